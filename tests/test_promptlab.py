"""The PromptLab widget, driven through its state as a user would drive it through the page."""

from __future__ import annotations

import workbench as wb


def test_inputs_follow_the_template_and_the_preview_renders(fake_server, connect_to):
    lab = wb.PromptLab(connect_to(fake_server()), "Write a {{level}} problem about {{topic}}.")
    assert list(lab.inputs) == ["level", "topic"]

    lab.inputs["level"].value = "hard"
    lab.inputs["topic"].value = "trains"
    assert lab.preview.value == "[user]\nWrite a hard problem about trains."

    lab.template.value = "A {{tone}} poem about {{topic}}."
    assert list(lab.inputs) == ["tone", "topic"] and lab.inputs["topic"].value == "trains"
    assert lab.inputs_box.children == (lab.inputs["tone"], lab.inputs["topic"])


def test_generate_n_shows_a_table_with_tokens_and_cost(fake_server, connect_to):
    lab = wb.PromptLab(connect_to(fake_server()), "Say {{word}}.")
    lab.inputs["word"].value = "hello"
    lab.n.value = 4

    lab.generate_button.click()

    assert lab.results.height == 4 and lab.results["sample_index"].to_list() == [0, 1, 2, 3]
    assert "echo: Say hello." in lab.output.value and "<th>tokens out</th>" in lab.output.value
    assert lab.status.value.startswith("4 samples, 4 ok, ")


def test_two_variants_side_by_side_on_the_same_variables(fake_server, connect_to):
    lab = wb.PromptLab(connect_to(fake_server()), "Say {{word}}.", variant_b="Shout {{word}}!")
    lab.inputs["word"].value = "hi"
    lab.n.value = 2

    lab.compare_button.click()

    assert lab.comparison["variant"].to_list() == ["A", "A", "B", "B"]
    assert lab.comparison["response"].to_list() == ["echo: Say hi."] * 2 + ["echo: Shout hi!"] * 2
    assert "<b>A</b>" in lab.output.value and "<b>B</b>" in lab.output.value


def test_the_template_is_saved_and_loads_back(fake_server, connect_to, tmp_path):
    lab = wb.PromptLab(connect_to(fake_server()), "Describe {{thing}}.", prompts_dir=tmp_path)
    lab.system.value = "Be vivid."
    lab.save_name.value = "describe"

    lab.save_button.click()

    loaded = wb.Prompt.load(tmp_path / "describe.json")
    assert loaded.template == "Describe {{thing}}." and loaded.system == "Be vivid."
    assert "saved to" in lab.status.value


def test_errors_appear_in_the_widget_not_as_tracebacks(fake_server, connect_to):
    server = fake_server()
    lab = wb.PromptLab(connect_to(server, max_retries=0), "Fine {{x}}.")

    lab.template.value = "Broken {{ x"
    assert "template syntax error at line 1, column 8" in lab.status.value

    lab.template.value = "Fine {{x}}."
    assert lab.status.value == ""
    server.stop()
    lab.generate_button.click()
    assert "could not reach" in lab.status.value and server.base_url in lab.status.value
