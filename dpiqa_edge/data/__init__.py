"""data stage: manifests (``manifest``), the synthetic default set (``synth``), real-dataset indexers
(``datasets``) and grouped seeded splits (``splits``). Import the submodule you need; nothing is imported
here so ``import dpiqa_edge.data`` stays free of scipy/scikit-image."""
