"""Compression: structured pruning, INT8 per target, and the accuracy gate that judges them.

* ``prune.prune_student(student_dir, ratio, manifest, targets_dir, out_dir, ...)`` - torch-pruning channel
  pruning + recovery fine-tune; a normal student folder (width map in config.json) + ``prune.json``.
* ``onnx_int8.quantize_onnx(src, dst, calib, method="minmax", ...)`` - onnxruntime static QDQ INT8.
* ``openvino_int8.quantize_openvino(src_xml, dst_xml, calib, val=None, max_srcc_drop=None, ...)`` - NNCF
  PTQ, or accuracy-controlled PTQ on SRCC.
* ``coreml_compress`` - CoreML weight-only INT8 and palettization.
* ``calib.load_calibration(manifest_or_folder, preprocess, n=300)`` - calibration images (never test).
* ``gate.srcc_gate(parent, variant, mos, max_drop=0.01)`` + ``gate.enforce_gate`` - the SRCC budget.

Nothing is imported here: each module imports its backend (torch, onnxruntime, openvino, nncf) inside
its functions, so ``import dpiqa_edge.quantize`` stays free.
"""
