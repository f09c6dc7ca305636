/*
 * The embeddable customer-service widget. On any site:
 *
 *   <script src="https://OUR-HOST/widget.js" data-bot="pk_..." defer></script>
 *
 * Plain JavaScript, no dependencies. The API base comes from this script's own src,
 * so the widget talks to the server that served it. Everything it draws lives in a
 * Shadow DOM: the host page's CSS cannot reach in and ours cannot leak out.
 *
 * - A conversation starts with the visitor's first message; its id and visitor token
 *   are kept in localStorage per key, so a reload resumes it. A closed conversation
 *   (409 conversation_closed) is replaced by a new one and the message sent again.
 * - While the panel is open, new messages (bot, agent) are polled every 3 seconds.
 * - When the bot is unsure it offers up to 3 questions ("您是不是想问"), shown as buttons; a
 *   tap sends `{"entry_id": N}` and the bot answers with that entry. Only the latest offer
 *   can be picked, so the buttons of earlier ones are switched off.
 * - UI language: English when the browser's language is English, Chinese otherwise;
 *   `data-lang="en"` or `data-lang="zh"` on the script tag forces one.
 */
(() => {
  "use strict";

  const script = document.currentScript;
  if (!script || !script.dataset.bot) {
    return;
  }
  const KEY = script.dataset.bot;
  const API = new URL("/api/v1/widget", script.src).href;
  const STORAGE_KEY = `scs-widget:${KEY}`;
  const POLL_MS = 3000;

  const STRINGS = {
    zh: {
      open: "在线客服",
      close: "关闭",
      placeholder: "请输入您的问题…",
      send: "发送",
      attach: "发送图片",
      attachLabel: "图片",
      image: "[图片]",
      voice: "[语音]",
      agent: "人工客服",
      handoff: "已为您转接人工客服，请稍候，客服回复后会显示在这里。",
      didYouMean: "您是不是想问：",
      notOffered: "这个选项已失效，请直接输入您的问题。",
      restarted: "上一次会话已结束，已为您开始新的会话。",
      rateLimited: "发送太频繁了，请稍后再试。",
      dailyCap: "今天的在线咨询已达上限，请明天再来，或通过店铺的其他方式联系我们。",
      unavailable: "客服暂时无法回复，请稍后再试。",
      error: "网络异常，消息未发送，请稍后再试。",
      poweredBy: "由智能客服提供技术支持",
    },
    en: {
      open: "Chat with us",
      close: "Close",
      placeholder: "Type your question…",
      send: "Send",
      attach: "Send an image",
      attachLabel: "Image",
      image: "[Image]",
      voice: "[Voice message]",
      agent: "Agent",
      handoff: "We have asked a member of our team to help; their reply will appear here.",
      didYouMean: "Did you mean:",
      notOffered: "That option is no longer available; please type your question.",
      restarted: "The previous conversation has ended; this is a new one.",
      rateLimited: "Too many messages; please wait a moment.",
      dailyCap: "This chat cannot take more messages today; please come back tomorrow or contact the shop another way.",
      unavailable: "We cannot answer right now; please try again later.",
      error: "Network error: the message was not sent. Please try again.",
      poweredBy: "Powered by Smart Customer Service",
    },
  };
  const requested = (script.dataset.lang || navigator.language || "zh").toLowerCase();
  const T = requested.startsWith("en") ? STRINGS.en : STRINGS.zh;

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.error = (body && body.error) || "";
    }
  }

  async function call(method, path, { body, token } = {}) {
    const headers = { "X-Widget-Key": KEY };
    if (token) {
      headers["X-Visitor-Token"] = token;
    }
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const response = await fetch(API + path, { method, headers, body, credentials: "omit" });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new ApiError(response.status, data);
    }
    return data;
  }

  const saved = {
    load() {
      try {
        return JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
      } catch {
        return null;
      }
    },
    store(conversation) {
      try {
        localStorage.setItem(STORAGE_KEY, JSON.stringify(conversation));
      } catch {
        /* storage full or blocked: the conversation lasts as long as the page */
      }
    },
    clear() {
      try {
        localStorage.removeItem(STORAGE_KEY);
      } catch {
        /* as above */
      }
    },
  };

  const CSS = `
    :host { all: initial; }
    * { box-sizing: border-box; font-family: -apple-system, BlinkMacSystemFont, "PingFang SC",
        "Microsoft YaHei", "Helvetica Neue", Arial, sans-serif; }
    .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border: 0;
      border-radius: 28px; padding: 14px 20px; color: #fff; background: var(--color);
      font-size: 15px; cursor: pointer; box-shadow: 0 4px 16px rgba(0,0,0,.2); }
    .panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000; width: 360px;
      max-width: calc(100vw - 40px); height: 520px; max-height: calc(100vh - 110px);
      display: none; flex-direction: column; background: #fff; border-radius: 12px;
      overflow: hidden; box-shadow: 0 8px 32px rgba(0,0,0,.25); font-size: 14px; color: #222; }
    .panel.open { display: flex; }
    .header { display: flex; align-items: center; gap: 8px; padding: 12px 14px;
      background: var(--color); color: #fff; font-weight: 600; }
    .header img { width: 28px; height: 28px; border-radius: 50%; object-fit: cover; background: #fff; }
    .header .title { flex: 1; }
    .header button { border: 0; background: transparent; color: #fff; font-size: 20px;
      cursor: pointer; line-height: 1; }
    .messages { flex: 1; overflow-y: auto; padding: 12px; background: #f5f6f8; }
    .msg { max-width: 80%; margin: 6px 0; padding: 8px 11px; border-radius: 10px;
      white-space: pre-wrap; word-wrap: break-word; line-height: 1.45; }
    .msg.customer { margin-left: auto; background: var(--color); color: #fff; }
    .msg.bot, .msg.agent { margin-right: auto; background: #fff; border: 1px solid #e3e5e8; }
    .msg .who { display: block; font-size: 12px; color: #888; margin-bottom: 2px; }
    .notice { margin: 8px auto; padding: 6px 10px; font-size: 12px; color: #666;
      text-align: center; background: #eceef1; border-radius: 8px; max-width: 90%; }
    .suggestions { display: flex; flex-direction: column; gap: 6px; margin-top: 6px; }
    .suggestions button { display: block; width: 100%; min-height: 36px; padding: 7px 10px;
      border: 1px solid var(--color); border-radius: 8px; background: #fff; color: var(--color);
      font-size: 14px; text-align: left; white-space: normal; cursor: pointer; }
    .suggestions button:disabled { border-color: #d0d4d9; color: #999; cursor: default; }
    .composer { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #e3e5e8; }
    .composer textarea { flex: 1; resize: none; height: 40px; padding: 9px; border: 1px solid #d0d4d9;
      border-radius: 8px; font-size: 14px; outline-color: var(--color); }
    .composer button { border: 0; border-radius: 8px; padding: 0 14px; color: #fff;
      background: var(--color); cursor: pointer; font-size: 14px; }
    .composer button.attach { padding: 0 10px; background: #eceef1; color: #333; }
    .composer button:disabled { opacity: .6; cursor: default; }
    .powered { padding: 4px; text-align: center; font-size: 11px; color: #999; }
    @media (max-width: 480px) {
      .panel { right: 0; bottom: 0; width: 100vw; max-width: 100vw; height: 100%;
        max-height: 100%; border-radius: 0; }
      .msg { max-width: 88%; }
      .composer textarea { font-size: 16px; }
    }
  `;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  class Widget {
    constructor(config) {
      this.config = config;
      this.conversation = saved.load(); // {id, token}
      this.shown = new Set();
      this.lastId = 0;
      this.timer = null;
      this.loaded = false;
      this.build();
    }

    build() {
      const host = element("div");
      host.setAttribute("data-scs-widget", "");
      const root = host.attachShadow({ mode: "open" });
      const style = element("style", "", CSS);
      const title = this.config.title || this.config.name;

      this.launcher = element("button", "launcher", T.open);
      this.launcher.type = "button";
      this.panel = element("div", "panel");
      this.panel.setAttribute("role", "dialog");
      this.panel.setAttribute("aria-label", title);
      const header = element("div", "header");
      if (this.config.logo_url) {
        const logo = element("img");
        logo.src = this.config.logo_url;
        logo.alt = "";
        header.append(logo);
      }
      const closeButton = element("button", "close", "×");
      closeButton.type = "button";
      closeButton.setAttribute("aria-label", T.close);
      header.append(element("span", "title", title), closeButton);
      this.list = element("div", "messages");
      this.list.setAttribute("aria-live", "polite");
      const composer = element("form", "composer");
      this.input = element("textarea", "input");
      this.input.placeholder = T.placeholder;
      this.input.maxLength = 2000;
      this.sendButton = element("button", "send", T.send);
      this.sendButton.type = "submit";
      composer.append(this.input);
      if (this.config.uploads.includes("image")) {
        this.fileInput = element("input");
        this.fileInput.type = "file";
        this.fileInput.accept = "image/jpeg,image/png,image/gif,image/webp";
        this.fileInput.hidden = true;
        const attach = element("button", "attach", T.attachLabel);
        attach.type = "button";
        attach.title = T.attach;
        attach.setAttribute("aria-label", T.attach);
        attach.addEventListener("click", () => this.fileInput.click());
        this.fileInput.addEventListener("change", () => this.sendImage());
        composer.append(this.fileInput, attach);
      }
      composer.append(this.sendButton);
      this.panel.append(header, this.list, composer);
      if (this.config.show_powered_by) {
        this.panel.append(element("div", "powered", T.poweredBy));
      }
      root.append(style, this.launcher, this.panel);
      host.style.setProperty("--color", this.config.color);

      this.launcher.addEventListener("click", () => this.toggle());
      closeButton.addEventListener("click", () => this.toggle(false));
      composer.addEventListener("submit", (event) => {
        event.preventDefault();
        this.sendText();
      });
      this.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.sendText();
        }
      });
      document.body.append(host);
    }

    toggle(open = !this.panel.classList.contains("open")) {
      this.panel.classList.toggle("open", open);
      clearInterval(this.timer);
      this.timer = null;
      if (!open) {
        return;
      }
      if (!this.loaded) {
        this.loaded = true;
        if (this.config.greeting) {
          this.list.append(this.bubble({ role: "bot", kind: "text", text: this.config.greeting }));
        }
      }
      this.poll();
      this.timer = setInterval(() => this.poll(), POLL_MS);
      this.input.focus();
    }

    bubble(message) {
      const node = element("div", `msg ${message.role}`);
      node.dataset.role = message.role;
      if (message.role === "agent") {
        node.append(element("span", "who", T.agent));
      }
      if (message.suggestions && message.suggestions.length) {
        node.append(document.createTextNode(T.didYouMean), this.offer(message.suggestions));
        return node;
      }
      const text = message.text || (message.kind === "image" ? T.image : message.kind === "voice" ? T.voice : "");
      node.append(document.createTextNode(text));
      return node;
    }

    offer(suggestions) {
      const box = element("div", "suggestions");
      (this.offered || []).forEach((button) => {
        button.disabled = true;
      });
      this.offered = suggestions.map(({ entry_id: entryId, question }) => {
        const button = element("button", "suggestion", question);
        button.type = "button";
        button.dataset.entryId = entryId;
        button.addEventListener("click", () => this.pick(entryId));
        box.append(button);
        return button;
      });
      return box;
    }

    show(message) {
      if (!message || this.shown.has(message.id)) {
        return;
      }
      this.shown.add(message.id);
      this.lastId = Math.max(this.lastId, message.id);
      this.list.append(this.bubble(message));
      this.list.scrollTop = this.list.scrollHeight;
    }

    notice(text) {
      this.list.append(element("div", "notice", text));
      this.list.scrollTop = this.list.scrollHeight;
    }

    async poll() {
      if (!this.conversation || this.polling) {
        return;
      }
      this.polling = true;
      try {
        const { id, token } = this.conversation;
        const data = await call("GET", `/conversations/${id}/messages?after=${this.lastId}`, { token });
        data.messages.forEach((message) => this.show(message));
      } catch (error) {
        if (error.status === 404 || error.status === 401) {
          this.forget(); // rotated key, or a conversation that is gone
        }
      } finally {
        this.polling = false;
      }
    }

    forget() {
      saved.clear();
      this.conversation = null;
      this.lastId = 0;
    }

    async start() {
      const created = await call("POST", "/conversations", { body: {} });
      this.conversation = { id: created.id, token: created.visitor_token };
      this.lastId = 0;
      saved.store(this.conversation);
    }

    async post(makeBody) {
      if (!this.conversation) {
        await this.start();
      }
      try {
        const { id, token } = this.conversation;
        return await call("POST", `/conversations/${id}/messages`, { body: makeBody(), token });
      } catch (error) {
        if (error.error !== "conversation_closed" && error.status !== 404) {
          throw error;
        }
        this.forget();
        await this.start();
        this.notice(T.restarted);
        const { id, token } = this.conversation;
        return call("POST", `/conversations/${id}/messages`, { body: makeBody(), token });
      }
    }

    async send(makeBody) {
      this.sendButton.disabled = true;
      try {
        const exchange = await this.post(makeBody);
        this.show(exchange.message);
        this.show(exchange.reply);
        // A fallback reply asks for a person; with no reply an agent already has the chat.
        if (exchange.handoff && exchange.reply && !this.handedOff) {
          this.handedOff = true;
          this.notice(T.handoff);
        }
        return true;
      } catch (error) {
        if (error.error === "rate_limited") {
          this.notice(T.rateLimited);
        } else if (error.error === "not_offered") {
          this.notice(T.notOffered);
        } else if (error.error === "widget_daily_cap_reached") {
          this.notice(T.dailyCap);
        } else if (error instanceof ApiError) {
          this.notice(T.unavailable);
        } else {
          this.notice(T.error);
        }
        return false;
      } finally {
        this.sendButton.disabled = false;
      }
    }

    async sendText() {
      const text = this.input.value.trim();
      if (!text || this.sendButton.disabled) {
        return;
      }
      this.input.value = "";
      if (!(await this.send(() => ({ text })))) {
        this.input.value = text;
      }
    }

    async pick(entryId) {
      if (!this.sendButton.disabled) {
        await this.send(() => ({ entry_id: entryId }));
      }
    }

    async sendImage() {
      const file = this.fileInput.files[0];
      this.fileInput.value = "";
      if (!file) {
        return;
      }
      await this.send(() => {
        const form = new FormData();
        form.append("kind", "image");
        form.append("file", file, file.name);
        return form;
      });
    }
  }

  async function boot() {
    try {
      new Widget(await call("GET", "/config"));
    } catch (error) {
      console.warn("widget.js: the chat widget is not available here:", error.message);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", boot);
  } else {
    boot();
  }
})();
