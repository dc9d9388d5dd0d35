"""Generation beyond text-to-image: image-to-image, inpaint/outpaint, ControlNet, tiled upscale.

:mod:`.options` (which mode a request asks for, checks, step counts) and :mod:`.images` (init
image, masks, canny: Pillow/NumPy) are torch-free; :mod:`.render` and :mod:`.upscale` run on the
engine thread on the already loaded pipeline; :mod:`.controlnet` checks and loads ControlNets.
"""

from zitdesk.engine.edit.options import MODE_LABELS, TXT2IMG, mode_of, total_steps

__all__ = ["MODE_LABELS", "TXT2IMG", "mode_of", "render_edit", "total_steps"]


def render_edit(pipe, request, index, embeds, neg, on_step=None):
    """See :func:`zitdesk.engine.edit.render.render_edit`."""
    from zitdesk.engine.edit.render import render_edit as _render

    return _render(pipe, request, index, embeds, neg, on_step)
