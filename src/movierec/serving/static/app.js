// movierec web page: browse and search posters, pick movies, ask for recommendations.
// Plain DOM, no build step; every piece of movie data is inserted as text, never as HTML.
"use strict";

const PAGE = 48;
const N_RECS = 10;
const state = {
  query: "",
  genre: "",
  offset: 0,
  total: 0,
  picks: new Map(), // movie id -> movie, in the order picked (oldest first; sent that way)
  model: "",        // served model name ("" until /models answers: the server's default)
  models: [],       // what /models says
  request: 0,       // sequence number: answers of outdated searches are dropped
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function withModel(path) {
  if (!state.model) return path;
  return `${path}${path.includes("?") ? "&" : "?"}model=${encodeURIComponent(state.model)}`;
}

async function api(path, options = {}) {
  const response = await fetch(withModel(path), {
    headers: { "Accept": "application/json", "Content-Type": "application/json" },
    ...options,
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

function describe(movie) {
  const parts = [];
  if (movie.year) parts.push(String(movie.year));
  parts.push(movie.genres.length ? movie.genres.join(", ") : "no genre");
  return parts.join(" · ");
}

function ratingLine(movie) {
  const n = movie.n_ratings.toLocaleString("en");
  const stars = movie.mean_rating == null ? "" : `, ${movie.mean_rating.toFixed(1)}★ average`;
  return `${n} rating${movie.n_ratings === 1 ? "" : "s"}${stars}`;
}

function card(movie) {
  const picked = state.picks.has(movie.id);
  const label = `${movie.title}${movie.year ? ` (${movie.year})` : ""}`;
  const button = el("button", {
    type: "button", class: "card", "data-id": String(movie.id),
    "aria-pressed": String(picked), title: `${label}\n${describe(movie)}\n${ratingLine(movie)}`,
  }, [
    el("img", { src: movie.poster_url, alt: "", loading: "lazy", width: "200", height: "300" }),
    el("span", { class: "info" }, [
      el("span", { class: "t", text: label }),
      el("span", { class: "m", text: describe(movie) }),
      el("span", { class: "m", text: ratingLine(movie) }),
    ]),
  ]);
  button.setAttribute("aria-label", `${label}, ${describe(movie)}, ${ratingLine(movie)}`);
  button.addEventListener("click", () => togglePick(movie));
  return button;
}

function togglePick(movie) {
  if (state.picks.has(movie.id)) state.picks.delete(movie.id);
  else state.picks.set(movie.id, movie);
  for (const node of document.querySelectorAll(`.card[data-id="${movie.id}"]`)) {
    node.setAttribute("aria-pressed", String(state.picks.has(movie.id)));
  }
  renderPicks();
}

function renderPicks() {
  const n = state.picks.size;
  $("pick-count").textContent = n === 0
    ? "No picks yet: click posters you like."
    : `${n} pick${n === 1 ? "" : "s"}:`;
  const list = $("pick-list");
  // numbered in picking order: a sequential model reads the last pick as the most recent
  list.replaceChildren(...[...state.picks.values()].map((movie, i) => {
    const chip = el("button", { type: "button", class: "chip", text: movie.title,
      "aria-label": `Remove ${movie.title} (pick ${i + 1}) from your picks` });
    chip.addEventListener("click", () => togglePick(movie));
    return el("li", {}, [el("span", { class: "pick-n", text: `${i + 1}.`, "aria-hidden": "true" }),
      chip]);
  }));
  $("recommend").disabled = n === 0;
  $("clear").disabled = n === 0;
  try {
    localStorage.setItem("movierec-picks", JSON.stringify([...state.picks.values()]));
  } catch (_) { /* private mode: picks just are not remembered */ }
}

async function loadMovies(append = false) {
  const seq = ++state.request;
  if (!append) state.offset = 0;
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(state.offset) });
  if (state.query) params.set("query", state.query);
  if (state.genre) params.set("genre", state.genre);
  $("status").textContent = "Loading…";
  try {
    const page = await api(`/movies?${params}`);
    if (seq !== state.request) return; // a newer search has started
    state.total = page.total;
    state.offset += page.movies.length;
    const items = page.movies.map((movie) => el("li", {}, [card(movie)]));
    if (append) $("grid").append(...items);
    else $("grid").replaceChildren(...items);
    const what = state.query ? `“${state.query}”` : "";
    const genre = state.genre ? ` in ${state.genre}` : "";
    $("browse-title").textContent = state.query || state.genre
      ? `Movies matching ${what}${genre}`.replace("matching  in", "in")
      : "Popular movies";
    $("status").textContent = page.total === 0
      ? "No movie matches: try fewer words or another genre."
      : `${page.total.toLocaleString("en")} movie${page.total === 1 ? "" : "s"}`;
    $("more").hidden = state.offset >= state.total;
  } catch (error) {
    if (seq === state.request) $("status").textContent = `Could not load movies (${error.message}).`;
  }
}

async function recommend() {
  const button = $("recommend");
  button.disabled = true;
  button.textContent = "Thinking…";
  try {
    // in picking order, oldest first (a Map iterates in insertion order)
    const body = JSON.stringify({ liked: [...state.picks.keys()], k: N_RECS });
    const answer = await api("/recommendations", { method: "POST", body });
    const info = state.models.find((m) => m.name === answer.model);
    $("answered").replaceChildren("Answered by ", el("b", { text: answer.model }),
      info && info.model !== answer.model ? ` (${info.model})` : "");
    const ignored = answer.ignored.map((id) => (state.picks.get(id) || { title: `movie ${id}` })
      .title);
    $("ignored").hidden = ignored.length === 0 && !answer.popular;
    $("ignored").textContent = [
      ignored.length ? `Left out (this model has no ratings for them): ${ignored.join(", ")}.`
        : "",
      answer.popular ? "None of your picks could be used: these are popular movies." : "",
    ].filter(Boolean).join(" ");
    const items = answer.recommendations.map((rec) => {
      const reason = el("p", { class: "reason" });
      const because = rec.reason.match(/^because you liked (.*)$/);
      if (because) reason.append("Because you liked ", el("b", { text: because[1] }));
      else reason.textContent = rec.reason;
      return el("li", { class: "rec" }, [card(rec.movie), reason]);
    });
    $("rec-grid").replaceChildren(...items);
    $("results").hidden = false;
    $("results-title").focus();
    $("results").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (error) {
    $("status").textContent = `Could not recommend (${error.message}).`;
  } finally {
    button.textContent = "Recommend";
    button.disabled = state.picks.size === 0;
  }
}

async function loadModels() {
  try {
    state.models = await api("/models");
    const fallback = state.models.find((m) => m.default) || state.models[0];
    if (!fallback) return;
    let saved = "";
    try { saved = localStorage.getItem("movierec-model") || ""; } catch (_) { /* no storage */ }
    state.model = state.models.some((m) => m.name === saved) ? saved : fallback.name;
    const select = $("model");
    select.replaceChildren(...state.models.map((m) => el("option", {
      value: m.name, text: m.name === m.model ? m.name : `${m.name} (${m.model})` })));
    select.value = state.model;
    select.hidden = state.models.length < 2;
  } catch (_) { /* the server's default model answers */ }
}

async function loadGenres() {
  try {
    const genres = await api("/genres");
    $("genre").append(...genres.map((g) => el("option", { value: g.name, text: g.name })));
  } catch (_) { /* the filter just stays at "All genres" */ }
}

function restorePicks() {
  try {
    const saved = JSON.parse(localStorage.getItem("movierec-picks") || "[]");
    for (const movie of saved) {
      if (movie && Number.isInteger(movie.id) && typeof movie.title === "string") {
        state.picks.set(movie.id, movie);
      }
    }
  } catch (_) { /* nothing saved */ }
  renderPicks();
}

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

document.addEventListener("DOMContentLoaded", async () => {
  restorePicks();
  await loadModels();
  loadGenres();
  loadMovies();
  const search = debounce(() => {
    state.query = $("search").value.trim();
    loadMovies();
  }, 250);
  $("search").addEventListener("input", search);
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.query = $("search").value.trim();
    loadMovies();
  });
  $("genre").addEventListener("change", () => { state.genre = $("genre").value; loadMovies(); });
  $("model").addEventListener("change", () => {
    state.model = $("model").value;
    try { localStorage.setItem("movierec-model", state.model); } catch (_) { /* no storage */ }
    $("results").hidden = true;
    loadMovies();
  });
  $("more").addEventListener("click", () => loadMovies(true));
  $("recommend").addEventListener("click", recommend);
  $("clear").addEventListener("click", () => {
    const ids = [...state.picks.keys()];
    state.picks.clear();
    for (const id of ids) {
      for (const node of document.querySelectorAll(`.card[data-id="${id}"]`)) {
        node.setAttribute("aria-pressed", "false");
      }
    }
    renderPicks();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && document.activeElement !== $("search")) {
      event.preventDefault();
      $("search").focus();
    }
  });
});
