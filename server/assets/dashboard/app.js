// The login and first-run setup page. No inline script: the page's CSP allows only this file.
'use strict';

const $ = (id) => document.getElementById(id);
const views = ['loading', 'setup', 'login', 'signed-in'];

function show(view, message) {
  for (const id of views) $(id).hidden = id !== view;
  $('message').hidden = !message;
  $('message').textContent = message || '';
  const field = document.querySelector(`#${view} input`);
  if (field) field.focus();
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  return { ok: response.ok, status: response.status, data };
}

async function refresh(message) {
  const { ok, data } = await call('GET', '/api/auth/status');
  if (!ok || !data) return show('login', 'The server did not answer; reload the page.');
  if (data.setup_required) return show('setup', message);
  return show(data.authenticated ? 'signed-in' : 'login', message);
}

async function submit(form, action) {
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    await action();
  } catch {
    show(form.id, 'The server could not be reached.');
  } finally {
    button.disabled = false;
  }
}

$('setup').addEventListener('submit', (event) => {
  event.preventDefault();
  submit(event.target, async () => {
    const password = $('setup-password').value;
    if (password !== $('setup-confirm').value) return show('setup', 'The passwords differ.');
    const { ok, data } = await call('POST', '/api/auth/setup', { password });
    if (ok) return refresh();
    return refresh(data && data.error);
  });
});

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  submit(event.target, async () => {
    const { ok, status, data } = await call('POST', '/api/auth/login', { password: $('login-password').value });
    $('login-password').value = '';
    if (ok) return refresh();
    if (status === 429) return show('login', 'Too many failed attempts. Wait a few minutes, then try again.');
    return show('login', (data && data.error) || 'Signing in failed.');
  });
});

$('logout').addEventListener('click', async () => {
  await call('POST', '/api/auth/logout');
  refresh();
});

refresh();
