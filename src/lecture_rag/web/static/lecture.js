// Lecture page: play from any line, open at the cited line, search inside the lecture.
// Transcript text reaches the page only through Jinja2 (escaped) and textContent.
"use strict";

(() => {
  const root = document.getElementById("lecture");
  if (!root) return;
  const lines = Array.from(document.querySelectorAll("#transcript .line"));
  const video = document.getElementById("lecture-video");
  const frame = document.getElementById("lecture-frame");
  const fold = (text) => text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();

  // Seek and play at `second`: currentTime as well as #t=, so hosts without Range still open there.
  function playAt(second) {
    root.dataset.second = String(second);
    if (video) {
      const seek = () => {
        video.currentTime = second;
        video.play().catch(() => {}); // autoplay may be refused until the user interacts; the seek stays
      };
      if (video.readyState >= 1) seek();
      else video.addEventListener("loadedmetadata", seek, { once: true });
      video.scrollIntoView({ block: "nearest" });
    } else if (frame) {
      frame.src = `${root.dataset.playerSrc}?start=${second}&autoplay=1`;
      frame.scrollIntoView({ block: "nearest" });
    }
  }

  function mark(line) {
    for (const other of lines) {
      other.classList.toggle("cited", other === line);
      if (other === line) other.setAttribute("aria-current", "true");
      else other.removeAttribute("aria-current");
    }
  }

  for (const line of lines) {
    line.querySelector("button.at").addEventListener("click", () => {
      mark(line);
      playAt(Number(line.dataset.start));
    });
  }

  // Opened by a citation (?t=): the cited line in view, the player at its second.
  if (root.dataset.cited !== undefined) {
    const cited = lines[Number(root.dataset.cited)];
    if (cited) cited.scrollIntoView({ block: "center" });
    if (video) {
      const second = Number(root.dataset.second);
      const seek = () => { if (video.currentTime < 0.5 && second > 0) video.currentTime = second; };
      if (video.readyState >= 1) seek();
      else video.addEventListener("loadedmetadata", seek, { once: true });
    }
  }

  // Search inside the lecture: every line that holds the words, by time (accents and case ignored).
  const query = document.getElementById("lecture-query");
  const found = document.getElementById("lecture-found");
  const hits = document.getElementById("lecture-hits");
  const texts = lines.map((line) => fold(line.querySelector(".text").textContent));
  document.getElementById("lecture-search").addEventListener("submit", (event) => event.preventDefault());
  query.addEventListener("input", () => {
    const wanted = fold(query.value.trim());
    hits.replaceChildren();
    if (!wanted) {
      found.textContent = "";
      return;
    }
    const matches = lines.filter((_, i) => texts[i].includes(wanted));
    found.textContent = matches.length === 1 ? "1 ocorrência" : `${matches.length} ocorrências`;
    for (const line of matches) {
      const start = Number(line.dataset.start);
      const text = line.querySelector(".text").textContent;
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "at";
      button.textContent = LR.hhmmss(start);
      button.addEventListener("click", () => {
        mark(line);
        line.scrollIntoView({ block: "center" });
        playAt(start);
      });
      const span = document.createElement("span");
      span.className = "text";
      span.textContent = text;
      item.append(button, " ", span);
      hits.append(item);
    }
  });
})();
