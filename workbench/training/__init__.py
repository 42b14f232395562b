"""training — fine-tune a model on the data made here, self-training rounds, model cards.

    finetune.py     ``wb.finetune`` and ``TunedModel``: the chat rows and the base hashed with the settings into
                    a key; a model already under data/models/ is returned untrained, else checked, trained, carded
    settings.py     ``TrainingSettings``: every setting that changes the model (method — sft or dpo, mode, epochs,
                    learning rate, LoRA rank, DPO's beta and loss, ...), validated once before anything loads; it
                    builds the key
    resources.py    free memory and disk checked before training; the cores torch may take
    loop.py         the training loop, the one module that imports torch, transformers and peft: the base GGUF
                    dequantised, rows tokenised with the loss on the answers only, LoRA or full AdamW steps,
                    the LoRA merged, the GGUF written; one objective per method (``sft``; ``dpo`` on pairs, the
                    reference being the base with the LoRA switched off)
    convert.py      GGUF facts, llama.cpp's converters back to GGUF (model and adapter), the install hint
    model_card.py   the card every trained model carries: base, settings, the rows it learned from
    self_train.py   ``wb.self_train``: generations of self-training (sample, keep, fine-tune the base; replace
                    or accumulate the data), SFT or DPO, measured on a held-out split and phrasing with paired
                    tests, and the estimate printed after the first generation
    arms.py         what each arm trains on: the verifier's, a judge's, all samples, gold (sft); pairs by the
                    verifier, a judge, pairwise verdicts, at random, or SFT on the chosen halves (dpo)
    collapse.py     what collapse looks like per generation: distinct-n, self-BLEU, answer length, distinct
                    answers per item, and the entropy along greedy answers to a fixed probe set
    __main__.py     ``python -m workbench.training``: the self-training table, printed

Uses ``grading``, ``curation`` and ``models`` (and ``columns``, ``errors``). torch, transformers and peft (the
``train`` extra) are imported only inside functions of ``loop.py``, after ``convert.require_training_packages``
has given the install hint naming the CPU build of torch if one is missing.
"""
