// Netra dashboard: a few progressive enhancements; every page works without it.
document.addEventListener("change", (e) => {
  const el = e.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit")) el.form.submit();
});
document.addEventListener("submit", (e) => {
  const form = e.target;
  const msg = form.getAttribute && form.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});
// Waterfall: expand all / collapse all with the "e" / "c" keys.
document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  if (e.key === "e" || e.key === "c") {
    document.querySelectorAll("#waterfall details.span").forEach((d) => { d.open = e.key === "e"; });
  }
});
