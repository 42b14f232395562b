"""training — fine-tune a model on the data made here, self-training rounds, model cards.

    finetune.py     ``wb.finetune``: LoRA or full fine-tune on a run table's chat rows, loss on the answers
                    only, merged and written as GGUF for the embedded llama.cpp server; keyed, never twice
    self_train.py   ``wb.self_train``: STaR rounds (sample, keep what the verifier accepts, fine-tune) with
                    controls (unfiltered, LLM-judge-accepted, gold) measured on a held-out split and phrasing
    model_card.py   the card every trained model carries: base, settings, the rows it learned from
    convert.py      GGUF facts, loading for training, llama.cpp's converter back to GGUF, the install hint
    __main__.py     ``python -m workbench.training``: the self-training table, printed

Uses ``grading``, ``generation``, ``curation`` and ``models``. torch, transformers and peft (the ``train``
extra) are imported only inside functions here, with an install hint naming the CPU build of torch.
"""
