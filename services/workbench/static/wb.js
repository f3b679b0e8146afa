// The workbench's only script: the district -> town cascade and the agent's
// live dispatch preview. Every page works without it (forms post normally).
"use strict";

function fillTowns(district) {
  const town = document.getElementById(district.dataset.townsFor);
  if (!town) return;
  const option = district.options[district.selectedIndex];
  const towns = option && option.dataset.towns ? option.dataset.towns.split("|") : [];
  const keep = town.value || town.dataset.selected;
  town.replaceChildren(new Option("（不确定）", ""));
  for (const name of towns) town.add(new Option(name, name, false, name === keep));
}

async function preview(form) {
  const target = document.getElementById("preview");
  const data = new URLSearchParams(new FormData(form));
  try {
    const response = await fetch("/agent/preview", {
      method: "POST",
      body: data,
      headers: { "X-Partial": "1" },
      credentials: "same-origin",
    });
    if (response.redirected || response.url.endsWith("/signin")) {
      window.location = response.url;
      return;
    }
    target.innerHTML = await response.text();
  } catch (error) {
    target.textContent = "无法连接工作台，预览暂不可用。";
  }
}

function previewSoon(form) {
  clearTimeout(form.previewTimer);
  form.previewTimer = setTimeout(() => preview(form), 600);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const district of document.querySelectorAll("select[data-towns-for]")) {
    district.addEventListener("change", () => fillTowns(district));
  }
  const form = document.getElementById("call-form");
  if (!form) return;
  document.getElementById("do-preview").addEventListener("click", (event) => {
    event.preventDefault();
    preview(form);
  });
  for (const name of ["district", "town", "category", "priority", "text"]) {
    const field = form.elements[name];
    if (field) field.addEventListener("change", () => previewSoon(form));
  }
});
