"""Recurrent units behind one interface (see gruasr.models.recurrent), and the registry that builds them."""

from gruasr.models.gru import GRU, GRUCell, gru_cell
from gruasr.models.ligru import LiGRU
from gruasr.models.lstm import LSTM
from gruasr.models.mingru import MinGRU
from gruasr.models.recurrent import RecurrentStack, available, recurrent
from gruasr.models.rnn import RNN

__all__ = [
    "GRU",
    "GRUCell",
    "LSTM",
    "LiGRU",
    "MinGRU",
    "RNN",
    "RecurrentStack",
    "available",
    "gru_cell",
    "recurrent",
]
