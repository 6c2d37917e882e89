"""Content-based pieces: movie descriptions, user / genre embedding tables, the genre-aware
training set and similar-movie search. The models themselves live in
:mod:`movierec.models.content` and :mod:`movierec.models.hybrid`."""
