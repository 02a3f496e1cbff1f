"""llama.cpp side of `sluice bench local`, through llama-cpp-python.

Loads the model once, then answers one JSON request a line on stdin with one JSON line on
stdout. A request gives the prompt as token ids (the ones the gateway's tokenizer and chat
template produce) so both engines prefill exactly the same tokens, and generation is greedy,
stopping at end-of-sequence or max_tokens like the gateway does.
"""
import json
import sys
import time


def main():
    try:
        import llama_cpp
        import numpy as np
    except ImportError as e:
        print(json.dumps({"error": f"llama-cpp-python is not installed: {e}"}), flush=True)
        return
    model, threads = sys.argv[1], int(sys.argv[2])
    llm = llama_cpp.Llama(
        model_path=model,
        n_threads=threads,
        n_threads_batch=threads,
        n_ctx=2048,
        n_batch=512,
        verbose=False,
    )
    eos = llm.token_eos()
    vocab = llm.n_vocab()
    print(json.dumps({"ready": True, "version": llama_cpp.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        tokens, max_tokens, stats = req["tokens"], req["max_tokens"], req["stats"]
        llm.reset()  # no reuse of an earlier prompt: every run prefills all its tokens
        sent = time.perf_counter()
        first = last = None
        n = 0
        for tok in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
            if stats:
                # What the gateway records per step: log-softmax of the chosen token and the
                # entropy of the distribution, over the whole vocabulary.
                x = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,)).astype(np.float64)
                z = x - x.max()
                logp = z - np.log(np.exp(z).sum())
                _ = (logp[tok], -(np.exp(logp) * logp).sum())
            now = time.perf_counter() - sent
            if first is None:
                first = now
            last = now
            n += 1  # an end-of-sequence token counts: generating it took a step
            if tok == eos or n >= max_tokens:
                break
        print(
            json.dumps(
                {
                    "prompt_tokens": len(tokens),
                    "completion_tokens": n,
                    "first_s": first,
                    "last_s": last,
                }
            ),
            flush=True,
        )


main()
