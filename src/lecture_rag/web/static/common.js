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
  // (a hit's best-matching sentence) or else at its start. The player is brought into view (on a phone
  // it sits above the answer, far from the hit that was tapped) and seeks itself, so a host without
  // HTTP Range still opens at the second.
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
      const video = el("video", {
        id: "player-video", src: `${player.src}#t=${second}`, controls: true, autoplay: true, preload: "metadata",
        title,
      });
      video.addEventListener("loadedmetadata", () => {
        if (Math.abs(video.currentTime - second) > 1) video.currentTime = second;
      }, { once: true });
      box.append(video);
    } else {
      box.append(el("p", { className: "no-link", id: "player-none" },
        `Este vídeo não tem link para reprodução. O trecho citado começa em ${hhmmss(second)}.`));
    }
    box.append(el("p", { className: "player-caption" }, `${title} · ${hhmmss(second)}`));
    box.dataset.second = String(second);
    const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    box.scrollIntoView({ block: "start", behavior: reduce ? "auto" : "smooth" });
  }

  // The player's resting state: nothing chosen yet (a new question must not keep the last lecture).
  function clearPlayer(box, hint) {
    box.replaceChildren(el("p", { className: "muted" }, hint));
    delete box.dataset.second;
  }

  function scoreText(score) {
    return score === null || score === undefined ? "n/d" : Number(score).toFixed(4);
  }

  // The hit's text with its cited sentence (``cite_text``) marked; text nodes only.
  function markedText(h) {
    const text = String(h.text || "");
    const cited = String(h.cite_text || "");
    const at = cited ? text.indexOf(cited) : -1;
    if (at < 0) return [text];
    return [text.slice(0, at), el("mark", { className: "cited" }, cited), text.slice(at + cited.length)];
  }

  // The engineer's fields of a hit, behind "detalhes": what ranked it, not what a student reads first.
  function hitDetails(h) {
    const parts = [`segmento ${h.inicio}–${h.fim}`, `Corpus ID ${h.corpus_id}`];
    if (h.score !== null && h.score !== undefined) parts.push(`Score ${scoreText(h.score)}`);
    if (h.bm25 !== null && h.bm25 !== undefined) parts.push(`BM25 ${Number(h.bm25).toFixed(2)}`);
    if (h.rerank_score !== null && h.rerank_score !== undefined) parts.push(`rerank ${scoreText(h.rerank_score)}`);
    if (h.rank) parts.push(`posição ${h.rank}`);
    return el("details", { className: "hit-details" }, el("summary", {}, "detalhes"),
      el("span", { className: "muted" }, parts.join(" · ")));
  }

  // Retrieved segments as a student reads them, in ranked order: the lecture and the cited second first,
  // the text clamped to a few lines with the cited sentence marked, "mostrar mais" to read it all.
  function renderHits(list, hits, onPlay) {
    const ranked = [...hits].sort((a, b) => (a.rank || 0) - (b.rank || 0));
    list.replaceChildren(...ranked.map((h) => {
      const second = Math.floor(Number(h.cite_start ?? h.start) || 0);
      const text = el("p", { className: "hit-text" }, ...markedText(h));
      const more = el("button", { type: "button", className: "more", ariaExpanded: "false" }, "mostrar mais");
      more.addEventListener("click", () => {
        const open = text.classList.toggle("expanded");
        more.textContent = open ? "mostrar menos" : "mostrar mais";
        more.setAttribute("aria-expanded", String(open));
      });
      return el("li", { className: "hit", dataset: { corpusId: h.corpus_id } },
        el("div", { className: "hit-head" },
          el("span", { className: "title" }, h.title || h.video_id),
          el("button", { type: "button", className: "play", title: "Ver o vídeo no trecho que mais responde à pergunta",
            ariaLabel: `Assistir a partir de ${hhmmss(second)}`,
            dataset: { cite: String(second) }, on: { click: () => onPlay(h) } }, `▶ ${hhmmss(second)}`)),
        text, more, hitDetails(h));
    }));
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
        const second = hhmmss(Math.floor(Number(target.cite_start ?? target.start) || 0));
        box.append(el("button", { type: "button", className: "cite", dataset: { n: String(n) },
          title: `${target.title || target.video_id} · ${second}`, ariaLabel: `citação ${n}: ${target.title || target.video_id}, ${second}`,
          on: { click: () => onPlay(target) } }, `[${n}]`));
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
  // `signal` (an AbortController's) cancels the request and the stream: the server then stops the answer.
  async function postEvents(url, body, handlers, signal) {
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body), signal,
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

  // The header's LLM badge follows the server's live probe of the LLM (GET /api/llm, cached there):
  // polled, so the page itself never waits for a dead LLM.
  const LLM_POLL_MS = 30000;
  async function refreshLLM() {
    const badge = document.getElementById("llm-health");
    if (!badge || badge.dataset.llm === "none") return;
    try {
      const response = await fetch("/api/llm", { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const health = await response.json();
      badge.dataset.state = health.state;
      badge.textContent = health.label;
    } catch (_) {
      // the server itself is away: the badge keeps its last word
    }
  }
  refreshLLM();
  setInterval(refreshLLM, LLM_POLL_MS);

  // Logging out forgets this tab's copy of the token too (the server deletes the cookie).
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("submit", () => setToken(""));
  const ready = loadSessionToken();
  return {
    el, hhmmss, play, clearPlayer, renderHits, renderAnswer, renderReferences, api, postEvents, token, setToken, ready,
    refreshLLM,
  };
})();
