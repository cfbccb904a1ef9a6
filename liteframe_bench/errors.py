"""Errors lfbench raises on bad input; each message names the offending field or value and what is allowed."""


class LfbenchError(Exception):
    """Base class of every error lfbench raises on purpose."""


class SpecError(LfbenchError, ValueError):
    """A method/reducer spec string or parameter is invalid (unknown name, unknown/mistyped/impossible value)."""


class ReducerError(LfbenchError, ValueError):
    """A reducer cannot run on the given input (impossible target for this grid, missing auxiliary input)."""


class PluginError(LfbenchError, ImportError):
    """A plugin file, folder or entry point could not be loaded."""


class ContextError(LfbenchError, ValueError):
    """A prompt is longer than the LLM's context (max_position_embeddings): the cell cannot run."""


class VideoError(LfbenchError, ValueError):
    """A video file cannot be used: missing, not a video, corrupt/truncated, no frames, or bad load parameters."""
