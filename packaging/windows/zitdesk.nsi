; zitdesk Windows installer (NSIS 3, Modern UI 2, 64-bit, per user, no administrator rights).
;
; Build it with scripts/build-windows-installer, never with makensis alone: the script splits the
; payload into groups below NSIS's 2 GB data limit and writes the file lists this script includes.
;
;   bash scripts/build-windows-installer --version 0.1.0 --payload dist/zitdesk --out dist/installer
;
; Output: <OUTNAME>.exe holds the first group of files, the uninstaller and the Start-menu and
; registry code; every further group is a data part <OUTNAME>-N.bin (itself a small silent NSIS
; program, compiled from this file with -DPART=N) that setup.exe checks and runs from its own
; folder. A CUDA build (about 4 GB) gives setup.exe plus two or three .bin files, each below
; GitHub's 2 GiB per-file limit. tests/packaging/test_windows_installer.py builds and runs it
; under Wine with a small stand-in payload split into several parts.
;
; Defines (makensis -DNAME=value):
;   VERSION   shown version, e.g. 0.1.0            VERSION_NUM  four numbers, e.g. 0.1.0.0
;   PAYLOAD   the PyInstaller onedir folder         OUTDIR       where the files are written
;   OUTNAME   file name without extension, e.g. zitdesk-0.1.0-setup
;   LISTS     folder of the generated lists         BUILD_ID     ties the parts to this setup.exe
;   PART      compile data part N instead of setup.exe
;
; Installs into %LOCALAPPDATA%\Programs\zitdesk (setup /S for silent, /D=FOLDER to choose the
; folder; /D= must come last). The uninstaller removes exactly the files it installed, the
; Start-menu folder and its HKCU registry key; models, outputs and settings live elsewhere and
; are never touched.

Unicode true
!ifndef TARGET
  !define TARGET amd64-unicode
!endif
Target ${TARGET}

!ifndef LISTS
  !error "LISTS is not set: build the installer with scripts/build-windows-installer."
!endif
!macro ZD_NEED NAME
  !ifndef ${NAME}
    !error "${NAME} is not set: build the installer with scripts/build-windows-installer."
  !endif
!macroend
!insertmacro ZD_NEED VERSION
!insertmacro ZD_NEED VERSION_NUM
!insertmacro ZD_NEED PAYLOAD
!insertmacro ZD_NEED OUTDIR
!insertmacro ZD_NEED OUTNAME
!insertmacro ZD_NEED BUILD_ID
!ifndef ICON
  !define ICON "${__FILEDIR__}\..\..\resources\icons\zitdesk.ico"
!endif

!define APP "zitdesk"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP}"
!define SM_DIR "$SMPROGRAMS\${APP}"

!include "${LISTS}\parts.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

RequestExecutionLevel user
ManifestDPIAware true
SetCompressor /SOLID lzma
InstallDir "$LOCALAPPDATA\Programs\${APP}"
AllowSkipFiles off
SetOverwrite on
Icon "${ICON}"
VIProductVersion "${VERSION_NUM}"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} ${VERSION} installer"
VIAddVersionKey "LegalCopyright" "zitdesk contributors"

!ifdef PART
; ---------------------------------------------------------------------------------------------
; Data part N: silent, started only by setup.exe with /PARTOF=<BUILD_ID>-N /S /D=<install folder>.
; /CHECK only verifies the part (NSIS checks its CRC before .onInit runs) and exits with 0.
Name "${APP} ${VERSION} (data part ${PART})"
OutFile "${OUTDIR}\${OUTNAME}-${PART}.bin"
SilentInstall silent

Function .onInit
  ${GetParameters} $R0
  ${GetOptions} $R0 "/PARTOF=" $R1
  ${If} $R1 != "${BUILD_ID}-${PART}"
    MessageBox MB_ICONSTOP "This file is part of the ${APP} ${VERSION} installer: run ${OUTNAME}.exe from the same folder instead." /SD IDOK
    SetErrorLevel 2
    Quit
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 "/CHECK" $R1
  ${IfNot} ${Errors}
    SetErrorLevel 0
    Quit
  ${EndIf}
FunctionEnd

Section "-files"
  !include "${LISTS}\files-${PART}.nsh"
SectionEnd

!else
; ---------------------------------------------------------------------------------------------
; setup.exe
!include "MUI2.nsh"
!include "WinVer.nsh"

Name "${APP} ${VERSION}"
OutFile "${OUTDIR}\${OUTNAME}.exe"
BrandingText "${APP} ${VERSION}"
InstallDirRegKey HKCU "${UNINST_KEY}" "InstallLocation"
ShowInstDetails show
ShowUninstDetails show

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_WELCOMEPAGE_TEXT "This installs ${APP} ${VERSION} for your user only; no administrator rights are needed.$\r$\n$\r$\n${APP} never downloads anything: point it at the Z-Image Turbo model files you already have.$\r$\n$\r$\nClick Next to continue."
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\zitdesk.exe"
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

!macro ZD_REQUIRE_PART N
  ${IfNot} ${FileExists} "$EXEDIR\${OUTNAME}-${N}.bin"
    MessageBox MB_ICONSTOP "${OUTNAME}-${N}.bin is missing: put all ${ZD_PARTS} ${OUTNAME}-N.bin files in the folder of ${OUTNAME}.exe and run it again." /SD IDOK
    SetErrorLevel 2
    Quit
  ${EndIf}
!macroend

!macro ZD_CHECK_PART N
  DetailPrint "Checking ${OUTNAME}-${N}.bin"
  ExecWait '"$EXEDIR\${OUTNAME}-${N}.bin" /PARTOF=${BUILD_ID}-${N} /CHECK /S' $0
  ${If} $0 != 0
    MessageBox MB_ICONSTOP "${OUTNAME}-${N}.bin is damaged or belongs to another build: download it again and run ${OUTNAME}.exe again." /SD IDOK
    SetErrorLevel 2
    Abort
  ${EndIf}
!macroend

!macro ZD_RUN_PART N
  DetailPrint "Installing ${OUTNAME}-${N}.bin (part ${N} of ${ZD_PARTS})"
  ExecWait '"$EXEDIR\${OUTNAME}-${N}.bin" /PARTOF=${BUILD_ID}-${N} /S /D=$INSTDIR' $0
  ${If} $0 != 0
    MessageBox MB_ICONSTOP "The files of ${OUTNAME}-${N}.bin could not be written to $INSTDIR (code $0): close ${APP} if it is running and run ${OUTNAME}.exe again." /SD IDOK
    SetErrorLevel 2
    Abort
  ${EndIf}
!macroend

Function .onInit
  ${IfNot} ${AtLeastWin10}
    MessageBox MB_ICONSTOP "${APP} needs 64-bit Windows 10 or 11." /SD IDOK
    SetErrorLevel 2
    Quit
  ${EndIf}
  !insertmacro ZD_FOR_EACH_PART ZD_REQUIRE_PART
FunctionEnd

Section "-install"
  ; every part is verified before anything is written
  !insertmacro ZD_FOR_EACH_PART ZD_CHECK_PART

  ; a previous zitdesk in this folder is removed first, so no stale file of it stays behind
  ReadRegStr $1 HKCU "${UNINST_KEY}" "InstallLocation"
  ${If} $1 == $INSTDIR
  ${AndIf} ${FileExists} "$INSTDIR\uninstall.exe"
    DetailPrint "Removing the previous version"
    ExecWait '"$INSTDIR\uninstall.exe" /S _?=$INSTDIR'
    Delete "$INSTDIR\uninstall.exe"
  ${EndIf}

  SetOutPath "$INSTDIR"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  !include "${LISTS}\files-0.nsh"
  !insertmacro ZD_FOR_EACH_PART ZD_RUN_PART

  SetOutPath "$INSTDIR"
  CreateDirectory "${SM_DIR}"
  CreateShortcut "${SM_DIR}\zitdesk.lnk" "$INSTDIR\zitdesk.exe" "" "$INSTDIR\zitdesk.exe" 0
  CreateShortcut "${SM_DIR}\zitdesk system check.lnk" "$SYSDIR\cmd.exe" \
    '/c ""$INSTDIR\zitdesk-console.exe" --selftest & pause"' "$INSTDIR\zitdesk.exe" 0
  CreateShortcut "${SM_DIR}\Uninstall zitdesk.lnk" "$INSTDIR\uninstall.exe"

  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "zitdesk contributors"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" '"$INSTDIR\zitdesk.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" ${ZD_SIZE_KB}
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  ; exactly the installed files and folders (user files put here are kept, and so is the folder)
  !include "${LISTS}\uninstall.nsh"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "${SM_DIR}\zitdesk.lnk"
  Delete "${SM_DIR}\zitdesk system check.lnk"
  Delete "${SM_DIR}\Uninstall zitdesk.lnk"
  RMDir "${SM_DIR}"
  DeleteRegKey HKCU "${UNINST_KEY}"
SectionEnd
!endif
