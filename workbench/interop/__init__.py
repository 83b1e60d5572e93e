"""Hugging Face ``transformers`` interop: export to and import from its BERT format."""
