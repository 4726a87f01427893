"""Compression that is not per format: structured pruning, calibration data, and the accuracy gate that
judges every lossy variant. Each format's INT8 / compression code lives with its export target
(``export/targets/``: ``onnx_int8``, ``openvino_int8``, ``coreml_compress``, ``ort_kernels``).

* ``prune.prune_student(student_dir, ratio, manifest, targets_dir, out_dir, ...)`` - torch-pruning channel
  pruning + recovery fine-tune; a normal student folder (width map in config.json) + ``prune.json``.
* ``calib.load_calibration(manifest_or_folder, preprocess, n=300)`` - calibration images (never test).
* ``gate.srcc_gate(parent, variant, mos, max_drop=0.01)`` + ``gate.enforce_gate`` - the SRCC budget.

Nothing is imported here: each module imports its backend (torch, onnxruntime, openvino, nncf) inside
its functions, so ``import dpiqa_edge.quantize`` stays free.
"""
