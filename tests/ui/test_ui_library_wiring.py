"""The LoRA Library tab is wired into the main window: 'Apply to Generate' fills the stack."""

from zitdesk.library import ApplyLoraRequest


def test_library_apply_adds_to_stack_and_prompt(make_window, settings, tmp_path, qtbot):
    win = make_window(settings)
    lora = tmp_path / "ink_style.safetensors"
    lora.write_bytes(b"")  # the stack only records the path; its coverage check is asynchronous
    win.generate.form.prompt.set_text("a cat on a roof")
    win.tabs.setCurrentIndex(3)
    win.library.apply_requested.emit(
        ApplyLoraRequest(
            path=str(lora), weight=0.65, trigger_words=("inkstyle",), insert_triggers=True
        )
    )
    assert win.tabs.currentWidget() is win.generate
    req = win.generate.form.build_request()
    assert [(lo.path, lo.weight) for lo in req.loras] == [(str(lora), 0.65)]
    assert "inkstyle" in req.prompt and "a cat on a roof" in req.prompt
    qtbot.wait(50)


def test_datasets_and_library_are_built_on_first_show(make_window, settings, qtbot):
    win = make_window(settings, show=True)
    assert not win.library_tab.created and not win.datasets_tab.created  # fast first window
    win.tabs.setCurrentWidget(win.datasets_tab)
    qtbot.waitUntil(lambda: win.datasets_tab.created)
    assert not win.library_tab.created
    win.tabs.setCurrentWidget(win.library_tab)
    qtbot.waitUntil(lambda: win.library_tab.created)
