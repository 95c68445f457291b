"""V-SynFlow: raw videos → clips, frames, captions and retrieval pairs of every task type."""
