// The main navigation collapses behind a Menu button on narrow screens (CSS decides when).
const header = document.querySelector(".site-header");
const toggle = document.getElementById("nav-toggle");
toggle?.addEventListener("click", () => {
  const open = header.classList.toggle("nav-open");
  toggle.setAttribute("aria-expanded", String(open));
});
