"""02 data curation: read, validate and encode the user's examples."""

from .encode import EncodedExample, encode_example, encode_prompt
from .formats import Example, Message, read_examples

__all__ = ["EncodedExample", "Example", "Message", "encode_example", "encode_prompt", "read_examples"]
