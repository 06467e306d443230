"""06 shipping, served: the tuned model behind an OpenAI-compatible API on an existing engine (llama.cpp's
llama-server on CPUs, vLLM on GPUs), never a home-made one."""
