"""The worker's runtime (docs/adr/0017-worker-runtime.md): the consumer loop (`runner`), the
batch protocol every agent runs (`batch`), changelog-backed state tables (`table`), the
topics the worker creates (`topics`) and the worker process (`worker`). It knows no rule."""
