"""06 shipping: the tuned model leaves tunesmith as merged weights, GGUF, an Ollama Modelfile or a vLLM adapter,
each verified to answer as the run did."""
