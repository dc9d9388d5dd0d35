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


def test_trigger_words_go_into_the_scene_line_of_a_list_prompt():
    from ui.structured_prompt import insert_trigger_words, parse_markdown

    prompt = "- in the kitchen\n- a woman -- red dress -- on the left"
    out = insert_trigger_words(prompt, ["zrobj", "red object"])
    assert out == "- zrobj, red object, in the kitchen\n- a woman -- red dress -- on the left"
    parsed = parse_markdown(out)
    assert parsed is not None and parsed.scene == "zrobj, red object, in the kitchen"
    assert [c.who for c in parsed.characters] == ["a woman"]
    # no scene line: the words get a list line of their own, the list still parses
    chars_only = "- a woman -- red dress\n- a dog -- on the right"
    out = insert_trigger_words(chars_only, ["zrobj"])
    assert out.splitlines()[0] == "- zrobj" and parse_markdown(out) is not None
    assert [c.who for c in parse_markdown(out).characters] == ["a woman", "a dog"]
    # words already present are not added twice; plain prompts get them in front
    assert insert_trigger_words(out, ["ZROBJ"]) == out
    assert insert_trigger_words("a cat", ["sks"]) == "sks, a cat"
