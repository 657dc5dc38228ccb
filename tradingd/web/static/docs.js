// The offline API page: the endpoints and schemas of /openapi.json as plain tables (Swagger UI would need a CDN).
"use strict";

const TOKEN_KEY = "tradingd_dashboard_token";  // the page's (app.js): one token per tab
const $ = (id) => document.getElementById(id);

function text(tag, content) { const el = document.createElement(tag); el.textContent = content; return el; }
function row(cells) { const tr = document.createElement("tr"); tr.append(...cells.map((c) => text("td", c))); return tr; }

function refName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return "list of " + refName(schema.items);
  if (schema.anyOf) return schema.anyOf.map(refName).join(" | ");
  return schema.type || "";
}

function answers(operation) {
  return Object.entries(operation.responses || {}).map(([code, response]) => {
    const body = ((response.content || {})["application/json"] || {}).schema;
    return code + (body ? " " + refName(body) : "");
  }).join(", ");
}

function parameters(operation) {
  const query = (operation.parameters || []).map((p) => `${p.name} (${p.in}): ${p.description || refName(p.schema)}`);
  const body = (((operation.requestBody || {}).content || {})["application/json"] || {}).schema;
  return [...query, ...(body ? ["body: " + refName(body)] : [])].join("; ");
}

function show(spec) {
  $("title").textContent = `${spec.info.title} ${spec.info.version}`;
  const rows = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      rows.push(row([method.toUpperCase(), path, operation.summary || "", parameters(operation), answers(operation)]));
    }
  }
  $("endpoints").querySelector("tbody").replaceChildren(...rows);
  const schemas = (spec.components || {}).schemas || {};
  $("schemas").replaceChildren(...Object.entries(schemas).map(([name, schema]) => {
    const section = document.createElement("section");
    section.append(text("h3", name));
    if (schema.description) section.append(text("p", schema.description));
    const table = document.createElement("table");
    const fields = Object.entries(schema.properties || {}).map(([field, p]) =>
      row([field, refName(p) || (p.enum ? p.enum.join(" | ") : ""), p.description || ""]));
    table.append(...fields);
    section.append(table);
    return section;
  }));
}

async function load() {
  const headers = {};
  let token = sessionStorage.getItem(TOKEN_KEY);
  for (;;) {
    if (token) headers["Authorization"] = "Bearer " + token;
    const response = await fetch("/openapi.json", { headers });
    if (response.status === 401 || response.status === 403) {
      token = window.prompt("This dashboard needs its token for reads (DASHBOARD_TOKEN):");
      if (!token) break;
      sessionStorage.setItem(TOKEN_KEY, token);
      continue;
    }
    if (!response.ok) break;
    show(await response.json());
    return;
  }
  $("message").textContent = "could not load /openapi.json";
  $("message").hidden = false;
}

load();
