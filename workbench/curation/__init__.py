"""curation — from many samples to a dataset worth keeping, and out of the workbench.

    dedup.py          ``wb.dedup``, ``wb.duplicate_clusters``: exact and MinHash-LSH near duplicates
    diversity.py      ``wb.diversity``: distinct-n, compression ratio, embedding spread
    contamination.py  ``wb.contamination``: n-gram overlap with a reference set
    filters.py        ``wb.keep``: filters with a report of what each removed
    similarity.py     word tokens and ROUGE-L, shared with the recipes
    export.py         ``wb.export``: Parquet, JSONL, OpenAI fine-tuning chat, Hugging Face, dataset card
    preferences.py    ``wb.preference_pairs``: chosen/rejected pairs from the verifier, a judge, wb.compare,
                      human labels or marks; their TRL and OpenAI preference exports (``wb.export.*_preferences``)

Uses nothing above ``errors`` and ``columns``: ``diversity`` is handed a connection and calls its ``embed``.
"""
