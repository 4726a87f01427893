"""dpiqa-edge: DP-IQA (diffusion-prior blind image quality) from research to phones and edge boxes.

The road, one subpackage per stage::

    data -> teacher -> distill -> quantize (prune, int8) -> export -> runtime
                                                              \\-> report

Importing the top-level package is cheap and never imports torch: the on-device runtime
(``dpiqa_edge.runtime``) must stay usable with numpy + pillow + one backend.
"""

__version__ = "0.1.0"

#: Every model and artifact reports quality on this scale, higher = better (DESIGN.md).
SCORE_RANGE = (0.0, 100.0)
