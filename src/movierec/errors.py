"""Exceptions movierec raises for bad input. Each message says what, where and what to do."""

from __future__ import annotations


class MovierecError(Exception):
    """Base class of every error movierec raises on purpose."""


class UnknownDatasetError(MovierecError, KeyError):
    """A dataset name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class DataFormatError(MovierecError, ValueError):
    """A data file that does not parse: names the file, the line number and the problem."""

    def __init__(self, path, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path} line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class DownloadError(MovierecError, OSError):
    """A download that failed (network, checksum, archive); no partial files are left behind."""


class DatasetNotFoundError(MovierecError, FileNotFoundError):
    """The dataset is neither on disk nor downloadable; the message says where to put the files."""


class EvaluationError(MovierecError, ValueError):
    """An evaluation that cannot run as asked: a split without the part or negatives a protocol
    needs, a model that returns NaN or a wrongly shaped array, mismatched metric inputs."""


class ModelError(MovierecError, ValueError):
    """A model used wrongly: an unknown hyper-parameter, an index out of range, bad input."""


class NotFittedError(ModelError):
    """A model asked to score or save before ``fit`` (or ``load``)."""


class UnknownModelError(MovierecError, KeyError):
    """A model name that is not registered; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class ArtifactError(MovierecError, OSError):
    """A model artifact that is missing, incomplete or corrupt; the message names the file."""


class OutputError(MovierecError, OSError):
    """An output path movierec refuses or cannot write: a folder holding files it did not write
    (without ``--force``), an input of the same command, a path another process is writing."""


class DiskFullError(OutputError):
    """A write that ran out of space; the message names the path. Nothing half-written is left."""


class CorruptFileError(MovierecError, ValueError):
    """A file movierec wrote whose bytes changed since (checksum mismatch) or that its reader
    cannot parse; the message names the file."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
