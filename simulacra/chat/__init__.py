"""Layer 3: the chatbot. Message formats, chat templates, transcripts and turn-taking."""
from simulacra.chat.formats import FORMATS, IRC, ChatFormat, Colon, Format, LineFormat, get_format
from simulacra.chat.template import ChatTemplate, TurnMarkers, read_gguf_metadata
from simulacra.chat.transcript import (completion_prompt, from_chat_turns, parse_reply, speakers,
                                       to_chat_turns, visible)

__all__ = ["FORMATS", "IRC", "ChatFormat", "Colon", "Format", "LineFormat", "get_format",
           "ChatTemplate", "TurnMarkers", "read_gguf_metadata",
           "completion_prompt", "from_chat_turns", "parse_reply", "speakers", "to_chat_turns", "visible"]
