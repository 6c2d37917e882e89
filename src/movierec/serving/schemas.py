"""Request and response models of the HTTP API (they make the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_LIKED = 400
MAX_DISLIKED = 100
"""Picks per request: 500 in all, a limit the schema itself states (no hidden sum rule)."""
MAX_K = 100
MAX_ID = 2**31 - 1



def _whole_number(value):
    """JSON Schema's ``integer`` includes ``10.0``; strict validation then refuses everything
    else that is not an int (``true``, ``"10"``, ``10.5``, ``NaN``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_Whole = BeforeValidator(_whole_number)
MovieId = Annotated[int, Field(ge=1, le=MAX_ID, description="MovieLens movie id."), _Whole]
K = Annotated[int, Field(ge=1, le=MAX_K, description="How many movies to return (1-100)."),
              _Whole]


class ModelInfo(BaseModel):
    name: str = Field(description="The name requests use (`?model=NAME`).")
    model: str = Field(description="Registered name of the model class (`ials`, `neumf`...).")
    dataset: str
    n_users: int
    n_items: int = Field(description="Movies in the model's id map.")
    n_servable: int = Field(description="Movies with training interactions (the candidates).")
    default: bool = Field(description="Answers requests that name no model.")


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    model: str = Field(description="Registered name of the default model.")
    artifact: str = Field(description="Name of the default artifact.")
    dataset: str
    n_users: int
    n_items: int
    posters: str = Field(description="`tmdb` when TMDB posters are configured, else `svg`.")
    models: list[ModelInfo] = Field(description="Every served artifact.")
    compute_threads: dict[str, int] = Field(description="Threads of each loaded compute "
                                            "library in this process (`blas`, `openmp`, "
                                            "`torch`): 1 unless `--compute-threads` says more.")


class Movie(BaseModel):
    id: int = Field(description="MovieLens movie id.")
    title: str = Field(description="Title without the year, leading article restored.")
    year: int | None
    genres: list[str]
    n_ratings: int = Field(description="Ratings of this movie in the dataset.")
    mean_rating: float | None = Field(description="Mean stars (0.5-5); null when unrated.")
    imdb_id: int | None
    tmdb_id: int | None
    poster_url: str = Field(description="Poster image on this server (TMDB image or SVG card).")


class MoviePage(BaseModel):
    total: int = Field(description="Movies matching the filters.")
    offset: int
    limit: int
    movies: list[Movie]


class Genre(BaseModel):
    name: str
    colour: str = Field(description="`#rrggbb` used on poster cards.")
    n_movies: int


class SimilarMovie(BaseModel):
    movie: Movie
    similarity: float = Field(description="Cosine similarity (higher is closer).")


class SimilarMovies(BaseModel):
    model: str = Field(description="The served artifact that answered.")
    movie: Movie
    similar: list[SimilarMovie]


class Recommendation(BaseModel):
    movie: Movie
    score: float = Field(description="Model score; only the order matters.")
    reason: str = Field(examples=["because you liked The Matrix"])
    because_id: int | None = Field(
        description="The picked (or watched) movie this one is most similar to in the "
        "model's item space; null for popular movies.")


class Recommendations(BaseModel):
    user_id: int | None = Field(None, description="The known user, or null for picks.")
    model: str = Field(description="The served artifact that answered.")
    ignored: list[int] = Field(description="Picks left out of the answer and of the reasons: "
                               "movies the model knows nothing about (no ratings in its "
                               "training data) and movies both liked and disliked.")
    popular: bool = Field(description="True when no liked pick was usable: the "
                          "recommendations are popular movies.")
    recommendations: list[Recommendation]


class PicksRequest(BaseModel):
    """A new person's picks: movies they liked (and optionally disliked)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # `true` is not movie 1, `"5"` is not 5 (`5.0` is: see _whole_number)
        json_schema_extra={"examples": [{"liked": [1, 260, 296, 318, 356], "k": 10}]},
    )

    liked: list[MovieId] = Field(default_factory=list, max_length=MAX_LIKED,
                                 description="Movies the person likes (at most 400), in "
                                 "the order they picked them, oldest first: a sequential model "
                                 "(SASRec, GRU4Rec...) answers what to watch after the last "
                                 "one; a movie listed twice counts at its last place. Other "
                                 "models ignore the order.")
    disliked: list[MovieId] = Field(default_factory=list, max_length=MAX_DISLIKED,
                                    description="Movies the person dislikes (at most 100).")
    k: K = 10


class ErrorMessage(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: `body`/`query`/`path`, then the field "
                                 "(long names cut to 40 characters).")
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """Every 422 answer: the input is never echoed back."""

    detail: str = Field(description="One line: where and what.",
                        examples=["body.k: Input should be less than or equal to 100"])
    errors: list[FieldError] = Field(description="Each problem (at most 10); empty for a "
                                     "request that is well-formed but cannot be answered.")
