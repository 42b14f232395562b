"""training — fine-tune a model on the data made here, self-training rounds, model cards.

    finetune.py     ``wb.finetune`` and ``TunedModel``: the chat rows and the base hashed with the settings into
                    a key; a model already under data/models/ is returned untrained, else checked, trained, carded
    settings.py     ``TrainingSettings``: every setting that changes the model (method, mode, epochs, learning
                    rate, LoRA rank, ...), validated once before anything loads; it builds the key
    resources.py    free memory and disk checked before training; the cores torch may take
    loop.py         the training loop, the one module that imports torch, transformers and peft: the base GGUF
                    dequantised, rows tokenised with the loss on the answers only, LoRA or full AdamW steps,
                    the LoRA merged, the GGUF written; one objective per method (``sft``)
    convert.py      GGUF facts, llama.cpp's converters back to GGUF (model and adapter), the install hint
    model_card.py   the card every trained model carries: base, settings, the rows it learned from
    self_train.py   ``wb.self_train``: STaR rounds (sample, keep what the verifier accepts, fine-tune) with
                    controls (unfiltered, LLM-judge-accepted, gold) measured on a held-out split and phrasing
    __main__.py     ``python -m workbench.training``: the self-training table, printed

Uses ``grading``, ``curation`` and ``models`` (and ``columns``, ``errors``). torch, transformers and peft (the
``train`` extra) are imported only inside functions of ``loop.py``, after ``convert.require_training_packages``
has given the install hint naming the CPU build of torch if one is missing.
"""
