"""The shipped default model as one unit: how it is built (:mod:`.build`, the ``dpiqa-edge default-model``
command: photos -> ladders -> broad recipe -> exports -> report -> card -> install) and its card
(:mod:`.card`, ``MODEL_CARD.md``).

Its files and their paths (``dpiqa_edge/models/default/**``; ``dpiqa_edge.models``: ``NAME``,
``default_artifact()``, ``has_default()`` ...) stay in the foundation on purpose: ``check``, the runtime
scorer and ``export --model default`` read them torch-free far below this unit, while the build here uses the
whole road (data, distillation, export, report). One package holding both would sit at two layers at once and
make a circle at package level (runtime -> the package -> runtime); so this package is wholly at the top of the
layer order (tests/test_layers.py) and imports the paths module like any other stage does.
"""
