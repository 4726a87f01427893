"""Import the DP-IQA authors' released models (see ``dpiqa_edge/authors/importer.py``)."""
