; zitdesk Windows installer (Inno Setup 6). Built and smoke-tested only by
; .github/workflows/release.yml on a windows-2022 runner (Inno Setup is preinstalled there):
;
;   pyinstaller --noconfirm --clean pyinstaller.spec
;   iscc /DAppVersion=0.1.0 packaging\windows\zitdesk.iss
;
; Output: dist\installer\zitdesk-<version>-setup.exe plus zitdesk-<version>-setup-N.bin slices.
; The CUDA torch bundle is 4+ GB; disk spanning keeps every file under 2 GB (GitHub's limit
; per release file), and setup.exe needs its .bin files next to it.
;
; Per-user install (no administrator rights): %LOCALAPPDATA%\Programs\zitdesk, a Start-menu
; entry, an optional desktop icon, and an uninstaller (Settings > Apps). Models, outputs and
; settings live in the user's folders and are not touched by the uninstaller.

#ifndef AppVersion
  #define AppVersion "0.0.0-dev"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\zitdesk"
#endif

[Setup]
AppId={{13E1AEC9-C28E-4D80-BAC9-B40450FCEE42}
AppName=zitdesk
AppVersion={#AppVersion}
AppVerName=zitdesk {#AppVersion}
AppPublisher=zitdesk contributors
AppComments=Offline studio for Z-Image Turbo
PrivilegesRequired=lowest
DefaultDirName={autopf}\zitdesk
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
WizardStyle=modern
SetupIconFile=..\..\resources\icons\zitdesk.ico
UninstallDisplayIcon={app}\zitdesk.exe
UninstallDisplayName=zitdesk
OutputDir=..\..\dist\installer
OutputBaseFilename=zitdesk-{#AppVersion}-setup
; CUDA DLLs are already dense: normal LZMA2 is nearly as small as max and far faster to build.
Compression=lzma2/normal
SolidCompression=yes
LZMAUseSeparateProcess=yes
LZMANumBlockThreads=4
DiskSpanning=yes
DiskSliceSize=2000000000
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\zitdesk"; Filename: "{app}\zitdesk.exe"
Name: "{autoprograms}\zitdesk system check"; Filename: "{cmd}"; Parameters: "/k ""{app}\zitdesk-console.exe"" doctor"; IconFilename: "{app}\zitdesk.exe"
Name: "{autodesktop}\zitdesk"; Filename: "{app}\zitdesk.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\zitdesk.exe"; Description: "{cm:LaunchProgram,zitdesk}"; Flags: nowait postinstall skipifsilent
