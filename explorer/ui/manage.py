"""Delete and rename a run, from the Train tab (the run named in its Run name box). Delete asks
for confirmation in the page and moves the run into the runs folder's .trash/ (explorer.trainer:
nothing is destroyed); neither works while the run trains."""

from __future__ import annotations

import gradio as gr

from explorer.ui.context import Ctx, err

CONFIRM_JS = """(name, _) => {
  const ask = 'Delete run "' + name + '"? It is moved to .trash/ in the runs folder (move it back to undo).';
  return [name && confirm(ask) ? name : '', _];
}"""


def build(ctx: Ctx, name_box: gr.Textbox, notice: gr.Markdown) -> None:
    with gr.Accordion("Delete or rename this run", open=False, elem_id="manage-run"):
        with gr.Row():
            new_name = gr.Textbox(label="New name", elem_id="rename-to", scale=3)
            rename_btn = gr.Button("Rename", elem_id="rename-btn", scale=1)
            delete_btn = gr.Button("Delete run…", variant="stop", elem_id="delete-btn", scale=1)

    @err
    def delete(name, _unused=""):
        if not name:  # cancelled in the confirmation
            return gr.skip(), gr.skip()
        target = ctx.trainer.trash(name)
        return (
            f"deleted `{name}`: moved to `{target.parent.name}/{target.name}` in the runs folder",
            gr.skip(),
        )

    @err
    def rename(name, new):
        target = ctx.trainer.rename(name, new)
        return f"renamed `{name}` to `{target.name}`", target.name

    hidden = dict(api_visibility="undocumented")
    delete_btn.click(
        delete, [name_box, new_name], [notice, new_name], js=CONFIRM_JS, api_name="delete_run", **hidden
    )
    rename_btn.click(rename, [name_box, new_name], [notice, name_box], api_name="rename_run", **hidden)
