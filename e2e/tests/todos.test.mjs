// What a person does with their todo list, in a real (headless) Chromium against a real server.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { login, screenshot, submit } from '../lib/app.mjs';
import { DESKTOP, PHONE, deviceTest, useAppAndBrowser } from '../lib/suite.mjs';

const env = useAppAndBrowser();

/** A test with its own browser context (cookies) and page; a screenshot is kept if it fails. */
function browserTest(name, fn) {
  deviceTest(env, name, async ({ device }) => {
    const context = await device();
    await fn(await context.newPage(), context);
  });
}

const unique = (label) => `${label} ${randomBytes(3).toString('hex')}`;
const path = (page) => new URL(page.url()).pathname;
const todoItem = (page, title) => page.locator('li.todo').filter({ has: page.locator('span.title', { hasText: title }) });
const countText = (page) => page.locator('#todo-count').innerText();

/** Describes the focused element, e.g. "input#email" or "button Sign out". */
const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  if (!el || el === document.body) return 'body';
  const tag = el.tagName.toLowerCase();
  return el.id ? `${tag}#${el.id}` : `${tag} ${el.getAttribute('aria-label') ?? el.textContent.trim()}`;
});

/** Presses Tab (or Shift+Tab) until `want` is focused, as a keyboard user would. */
async function tabTo(page, want, { back = false, max = 12 } = {}) {
  const seen = [];
  for (let i = 0; i <= max; i++) {
    const now = await focused(page);
    if (now === want) return;
    seen.push(now);
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
  }
  assert.fail(`could not Tab to ${want}; focus went: ${seen.join(' → ')}`);
}

browserTest('a newcomer signs in, adds a todo, completes it and deletes it', async (page) => {
  const alice = env.app.accounts.alice;
  await login(page, env.app.url, alice.email, alice.password);

  assert.equal(path(page), '/todos');
  assert.equal(await page.locator('h1').innerText(), 'Your todos');
  assert.equal(await page.locator('nav.account .who').innerText(), alice.email);
  assert.match(await page.locator('p.empty').innerText(), /Nothing to do yet/);
  assert.equal(await page.locator('li.todo').count(), 0);

  const title = 'Buy oat milk';
  await page.getByLabel('New todo').fill(title);
  await submit(page, () => page.getByRole('button', { name: 'Add', exact: true }).click());
  assert.equal(path(page), '/todos');

  const item = todoItem(page, title);
  assert.equal(await page.locator('li.todo').count(), 1);
  assert.equal(await item.locator('span.title').innerText(), title);
  assert.equal(await countText(page), '0 of 1 done');
  const check = item.locator('button.check');
  assert.equal(await check.getAttribute('aria-pressed'), 'false');
  assert.equal(await check.getAttribute('aria-label'), `Mark “${title}” as done`);
  assert.equal(await page.locator('p.empty').count(), 0);

  await submit(page, () => check.click());
  assert.equal(await countText(page), '1 of 1 done');
  assert.match(await item.getAttribute('class'), /\bdone\b/);
  assert.equal(await item.locator('button.check').getAttribute('aria-pressed'), 'true');
  assert.equal(await item.locator('button.check').getAttribute('aria-label'), `Mark “${title}” as not done`);

  // Add a second, long todo so the screenshots show a realistic list.
  await page.getByLabel('New todo').fill('Write the quarterly report for the board, with charts, a summary and an appendix of every figure');
  await submit(page, () => page.getByRole('button', { name: 'Add', exact: true }).click());
  assert.equal(await countText(page), '1 of 2 done');
  await screenshot(page, 'todos-desktop');
  await page.setViewportSize(PHONE);
  await screenshot(page, 'todos-phone');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at phone width`);
  await page.setViewportSize(DESKTOP);

  for (const name of [title, 'Write the quarterly report']) {
    await submit(page, () => todoItem(page, name).getByRole('button', { name: /^Delete/ }).click());
    assert.equal(await page.getByRole('status').innerText(), 'Todo deleted.');
  }
  assert.equal(await todoItem(page, title).count(), 0);
  assert.equal(await page.locator('li.todo').count(), 0);
  assert.equal(await page.locator('#todo-count').count(), 0);
  assert.match(await page.locator('p.empty').innerText(), /Nothing to do yet/);
});

browserTest('a wrong password shows an error and stays on the sign-in page', async (page) => {
  await page.goto(`${env.app.url}/login`);
  await page.fill('#email', env.app.accounts.alice.email);
  await page.fill('#password', 'not-the-password');
  const response = page.waitForResponse((r) => r.request().method() === 'POST');
  await submit(page, () => page.getByRole('button', { name: 'Sign in' }).click());

  assert.equal((await response).status(), 401);
  assert.equal(path(page), '/login');
  assert.equal(await page.getByRole('alert').innerText(), 'That email and password do not match an account.');
  assert.equal(await page.inputValue('#email'), env.app.accounts.alice.email, 'the email is kept');
  assert.equal(await page.inputValue('#password'), '', 'the password is not echoed back');
  assert.equal(await page.locator('nav.account').count(), 0, 'nobody is signed in');
  await screenshot(page, 'login-wrong-password');
});

browserTest('the whole flow works with the keyboard only', async (page) => {
  const user = await env.app.createUser(`keys-${randomBytes(3).toString('hex')}@acme.test`);
  await page.goto(`${env.app.url}/login`);

  await tabTo(page, 'input#email');
  await page.keyboard.type(user.email);
  await tabTo(page, 'input#password');
  await page.keyboard.type(user.password);
  await submit(page, () => page.keyboard.press('Enter'));
  assert.equal(path(page), '/todos');
  assert.equal(await page.locator('nav.account .who').innerText(), user.email);

  const title = unique('Typed with keys');
  await tabTo(page, 'input#title');
  await page.keyboard.type(title);
  await submit(page, () => page.keyboard.press('Enter'));
  assert.equal(await todoItem(page, title).count(), 1);
  assert.equal(await countText(page), '0 of 1 done');

  await tabTo(page, `button Mark “${title}” as done`);
  await submit(page, () => page.keyboard.press('Space'));
  assert.equal(await countText(page), '1 of 1 done');
  assert.match(await todoItem(page, title).getAttribute('class'), /\bdone\b/);
  await screenshot(page, 'keyboard-focus');

  await tabTo(page, `button Delete “${title}”`);
  await submit(page, () => page.keyboard.press('Enter'));
  assert.equal(await page.locator('li.todo').count(), 0);

  await tabTo(page, 'button Sign out', { back: true });
  await page.keyboard.press('Enter');
  await page.waitForURL('**/login?reason=signed_out');
});

browserTest('signing out lands on the sign-in page and closes the session', async (page) => {
  const alice = env.app.accounts.alice;
  await login(page, env.app.url, alice.email, alice.password);
  assert.equal(path(page), '/todos');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/login?reason=signed_out');
  assert.equal(await page.getByRole('status').innerText(), 'You signed out.');
  assert.equal(await page.locator('nav.account').count(), 0);
  await screenshot(page, 'signed-out');

  await page.goto(`${env.app.url}/todos`);
  assert.equal(path(page), '/login');
  assert.equal(await page.locator('h1').innerText(), 'Sign in');
});

browserTest("one user's todos are not visible to another", async (page) => {
  const { alice, bob } = env.app.accounts;
  await login(page, env.app.url, alice.email, alice.password);
  const title = unique("Alice's private todo");
  await page.getByLabel('New todo').fill(title);
  await submit(page, () => page.getByRole('button', { name: 'Add', exact: true }).click());
  const item = todoItem(page, title);
  assert.equal(await item.count(), 1);
  const toggleAction = await item.locator('form[action$="/toggle"]').getAttribute('action');
  const todoPath = toggleAction.replace(/\/toggle$/, '');

  // Bob, in a browser of his own.
  const bobContext = await env.browser.newContext({ viewport: DESKTOP });
  try {
    const bobPage = await bobContext.newPage();
    await login(bobPage, env.app.url, bob.email, bob.password);
    assert.equal(await bobPage.locator('nav.account .who').innerText(), bob.email);
    assert.equal(await bobPage.getByText(title).count(), 0);
    assert.equal(await bobPage.locator('li.todo').count(), 0);

    // Even knowing its address, Bob cannot complete or delete Alice's todo.
    for (const action of ['toggle', 'delete']) {
      const status = await bobPage.evaluate(async (url) => (await fetch(url, { method: 'POST', redirect: 'manual' })).status,
        `${todoPath}/${action}`);
      assert.equal(status, 404, `bob's POST ${todoPath}/${action}`);
    }
  } finally {
    await bobContext.close();
  }

  await page.reload();
  assert.equal(await item.count(), 1, "alice's todo is still there");
  assert.equal(await item.locator('button.check').getAttribute('aria-pressed'), 'false');
});
