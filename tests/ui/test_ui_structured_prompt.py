"""Scene + characters ⇄ markdown list."""

from ui.structured_prompt import Character, StructuredPrompt, parse_markdown


def test_markdown_round_trip():
    sp = StructuredPrompt(
        "a rainy  street\nat night",
        [
            Character("a girl", ["short brown hair", "red coat"], "on the left"),
            Character("a dog", [], "on the right"),
            Character("", [], ""),
        ],
    )
    text = sp.to_markdown()
    assert text == (
        "- a rainy street at night\n"
        "- a girl -- short brown hair -- red coat -- on the left\n"
        "- a dog -- on the right"
    )
    back = parse_markdown(text)
    assert back.scene == "a rainy street at night"
    assert [(c.who, c.attributes, c.position) for c in back.characters] == [
        ("a girl", ["short brown hair", "red coat"], "on the left"),
        ("a dog", [], "on the right"),
    ]


def test_flat_prompts_are_not_lists():
    assert parse_markdown("a cat on a sofa") is None
    assert parse_markdown("") is None
    only_chars = parse_markdown("- a man -- tall -- in the background")
    assert only_chars.scene == "" and only_chars.characters[0].position == "in the background"
