"""models — the one seam to a model. Everything below goes through an OpenAI-compatible endpoint.

    connect.py     ``wb.connect()``: pick a backend, resolve settings, return an ``LLM``
    config.py      settings from arguments, environment, ``workbench.toml``
    client.py      ``LLM``: one endpoint through the official ``openai`` client; ``chat``/``chat_many``
    requests.py    what one request is (normalised, keyed, its token estimate) and the row that answers it
    batch.py       the batch runner: cache first, adaptive concurrency, retries, progress
    progress.py    progress bars that end on their final count, also in executed notebooks
    routes.py      ``via=``: where a batch is answered (here, or a route a layer above registers)
    cache.py       the content-addressed SQLite response cache
    retry.py       which failures to retry, and how long to wait
    ratelimit.py   rate limits: the ones you set, the one the server announces in its headers, and the one
                   its 429s reveal when it announces none
    adaptive.py    adaptive concurrency: a slow start, from 8 requests in flight up to the batch's maximum
    pricing.py     list prices (genai-prices, bundled; or price_per_million=), and what a response cost
    usage.py       what this process asked of models: connections, calls sent and from the cache, tokens, cost
    local.py       the embedded model: llama.cpp's llama-server on a loopback port, started on demand
    llama_build.py builds llama-server once per machine from a pinned source, cached in ~/.cache/workbench
    sync.py        the sync form of every async call, also inside a running Jupyter kernel

Nothing here imports from the layers above (generation, grading, curation, views).
"""
