// Who is looking at the dashboard. The page itself holds no data: its data calls
// carry the API key entered here, kept in this tab's sessionStorage only (gone
// when the tab closes) and sent as X-API-Key. A key the API refuses (401: never
// issued, or revoked) signs the page out.
"use strict";

window.hotlineSession = (() => {
  const STORE = "hotline.apiKey";
  const KINDS = { staff: "热线中心", department: "承办单位", agent: "坐席", channel: "渠道" };
  const byId = (id) => document.getElementById(id);

  const key = () => sessionStorage.getItem(STORE) || "";

  async function call(url, accept, signal) {
    const response = await fetch(url, {
      headers: { Accept: accept, "X-API-Key": key() }, cache: "no-store", signal,
    });
    if (response.status === 401) signOut("密钥无效或已被吊销，请重新输入");
    return response;
  }

  function showSignIn(message) {
    byId("signin").hidden = false;
    byId("who").hidden = true;
    byId("signin-error").textContent = message || "";
    const status = byId("status");
    status.dataset.state = "signin";
    status.textContent = "请输入访问密钥";
  }

  function signOut(message) {
    sessionStorage.removeItem(STORE);
    showSignIn(message);
  }

  async function whoami() {
    try {
      const response = await call("/v1/whoami", "application/json");
      return response.ok ? await response.json() : null;
    } catch (error) {
      console.error(error);
      return null;
    }
  }

  function showWho(who) {
    byId("signin").hidden = true;
    byId("who").hidden = false;
    byId("who-name").textContent = String(who.name) + "（" + (KINDS[who.kind] || who.kind) + "）";
  }

  async function enter(onReady) {
    const who = await whoami();
    if (!who) {
      signOut("密钥无效或已被吊销，请重新输入");
      return;
    }
    showWho(who);
    onReady();
  }

  // A CSV export: a plain link cannot carry the key, so the file is fetched and
  // handed to the browser as a download.
  async function download(url, filename) {
    const response = await call(url, "text/csv");
    if (!response.ok) throw new Error(url + " 返回 HTTP " + response.status);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = filename;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  }

  function keepDownloads() {
    for (const link of document.querySelectorAll(".downloads a")) {
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const name = link.id.replace(/^csv-/, "") + ".csv";
        download(link.getAttribute("href"), name).catch((error) => console.error(error));
      });
    }
  }

  // onReady runs each time a key is accepted: at load if this tab has one.
  function start(onReady) {
    keepDownloads();
    byId("signin").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(STORE, byId("api-key").value.trim());
      byId("api-key").value = "";
      enter(onReady);
    });
    byId("signout").addEventListener("click", () => signOut(""));
    if (key()) enter(onReady);
    else showSignIn("");
  }

  return { start, call, signedIn: () => Boolean(key()) };
})();
