// Shared helpers of the lecture-rag pages. Plain JavaScript, no build step.
// Rule: text from transcripts, questions and answers is untrusted; it only
// ever reaches the page through textContent / text nodes, never innerHTML.
"use strict";

const LR = (() => {
  const TOKEN_KEY = "lecture-rag.token";

  // The token never travels in a URL. A browser session (opened by the one-time login link that
  // `lecture-rag serve` prints, or by the form at /login) is an HttpOnly cookie; pages of a session
  // fetch the token once into this tab's sessionStorage, for the Authorization header of writes.
  async function loadSessionToken() {
    if (!token() && document.body.dataset.session === "1") {
      try {
        const response = await fetch("/api/session", { headers: { Accept: "application/json" } });
        if (response.ok) setToken((await response.json()).token);
      } catch (_) {
        // no session token: the annotation page asks for it
      }
    }
    document.body.dataset.tokenReady = token() ? "1" : "0";
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  // el("li", {className: "x", dataset: {n: 1}}, "text", child) — strings become text nodes.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else node[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function hhmmss(seconds) {
    const total = Math.max(0, Math.floor(Number(seconds) || 0));
    const pad = (n) => String(n).padStart(2, "0");
    return `${pad(Math.floor(total / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  }

  function isHttpUrl(value) {
    try {
      const protocol = new URL(value).protocol;
      return protocol === "https:" || protocol === "http:";
    } catch (_) {
      return false;
    }
  }

  // Play `item` ({player, start, cite_start?, title, video_id}) inside `box`, at the second it cites
  // (a hit's best-matching sentence) or else at its start.
  function play(box, item) {
    const at = item.cite_start ?? item.start;
    const second = Math.max(0, Math.floor(Number(at) || 0));
    const player = item.player || { kind: "none" };
    const title = item.title || item.video_id || "vídeo";
    box.replaceChildren();
    if (player.kind === "youtube" && isHttpUrl(player.src)) {
      box.append(el("iframe", {
        id: "player-frame", src: `${player.src}?start=${second}&autoplay=1`, title,
        allow: "autoplay; encrypted-media; picture-in-picture", allowFullscreen: true,
      }));
    } else if (player.kind === "media" && isHttpUrl(player.src)) {
      box.append(el("video", {
        id: "player-video", src: `${player.src}#t=${second}`, controls: true, autoplay: true, preload: "metadata",
      }));
    } else {
      box.append(el("p", { className: "no-link", id: "player-none" },
        `Este vídeo não tem link para reprodução. O trecho citado começa em ${hhmmss(second)}.`));
    }
    box.append(el("p", { className: "player-caption" }, `${title} · ${hhmmss(second)}`));
    box.dataset.second = String(second);
  }

  function scoreText(score) {
    return score === null || score === undefined ? "n/d" : Number(score).toFixed(4);
  }

  // Retrieved segments: score, time range and text, each playable.
  function renderHits(list, hits, onPlay) {
    list.replaceChildren(...hits.map((h) => el("li", { className: "hit", dataset: { corpusId: h.corpus_id } },
      el("div", { className: "hit-head" },
        el("button", { type: "button", className: "play", title: "Ver o vídeo no trecho que mais responde à pergunta",
          dataset: { cite: String(Math.floor(Number(h.cite_start ?? h.start) || 0)) },
          on: { click: () => onPlay(h) } }, `▶ ${hhmmss(Math.floor(Number(h.cite_start ?? h.start) || 0))}`),
        el("span", { className: "muted window" }, `segmento ${h.inicio}–${h.fim}`),
        el("span", { className: "score" }, `Score ${scoreText(h.score)}`),
        el("span", { className: "muted" }, `Corpus ID ${h.corpus_id}`),
        el("span", { className: "title" }, h.title || h.video_id)),
      el("p", { className: "hit-text", title: "Clique para expandir ou recolher",
        on: { click: (ev) => ev.currentTarget.classList.toggle("expanded") } }, h.text))));
  }

  // Answer text with each valid [n] as a link that plays context[n-1].
  function renderAnswer(box, text, context, onPlay) {
    box.replaceChildren();
    const pattern = /\[(\d+)\]/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      const n = Number(match[1]);
      box.append(document.createTextNode(text.slice(last, match.index)));
      const target = context[n - 1];
      if (target) {
        box.append(el("a", { href: "#", className: "cite", dataset: { n: String(n) },
          title: `${target.title || target.video_id} · ${hhmmss(target.cite_start ?? target.start)}`,
          on: { click: (ev) => { ev.preventDefault(); onPlay(target); } } }, `[${n}]`));
      } else {
        box.append(document.createTextNode(match[0]));
      }
      last = match.index + match[0].length;
    }
    box.append(document.createTextNode(text.slice(last)));
  }

  function renderReferences(list, refs, onPlay) {
    if (!refs.length) {
      list.replaceChildren(el("li", { className: "muted" }, "(nenhuma)"));
      return;
    }
    list.replaceChildren(...refs.map((r) => el("li", { className: "reference" },
      el("span", { className: "title" }, r.title || r.video_id), " — ",
      ...r.times.map((t) => el("button", { type: "button", className: "ref-time", dataset: { n: String(t.n) },
        on: { click: () => onPlay({ ...t, player: r.player, title: r.title, video_id: r.video_id }) } },
      `[${t.n}] ${t.inicio}`)),
      r.url ? "" : el("span", { className: "muted" }, " (sem link)"))));
  }

  async function errorOf(response) {
    try {
      const body = await response.json();
      return body.detail || `Erro ${response.status}`;
    } catch (_) {
      return `Erro ${response.status}`;
    }
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) {
      const error = new Error(await errorOf(response));
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // POST and read server-sent events: handlers[event](data) for each message.
  async function postEvents(url, body, handlers) {
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await errorOf(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, cut), handlers);
        buffer = buffer.slice(cut + 2);
      }
    }
  }

  function dispatch(block, handlers) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length && handlers[event]) handlers[event](JSON.parse(data.join("\n")));
  }

  // Logging out forgets this tab's copy of the token too (the server deletes the cookie).
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("submit", () => setToken(""));
  const ready = loadSessionToken();
  return { el, hhmmss, play, renderHits, renderAnswer, renderReferences, api, postEvents, token, setToken, ready };
})();
