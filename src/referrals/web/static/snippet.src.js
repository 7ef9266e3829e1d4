/*
 * referrals snippet, readable source of snippet.js (which is this, minified by hand:
 * keep the two in step). No dependencies; served by GET /v1/snippet.js.
 *
 * Keeps the referral a tracked link brought (`ref` and `click_id` in the page's URL)
 * in a first-party cookie, `referrals_ref`, for the program's attribution window, so
 * the signup form can send it: `referrals.referral()` -> {code, click_id} or null.
 *
 * Settings, from data attributes of its own <script> tag:
 *   data-window-days="30"     days the cookie lasts (1-365; default 30)
 *   data-attribution="first"  "first": an earlier click keeps the credit; "last": a new one takes it
 *   data-consent="pending"    set no cookie until the page calls referrals.consent(true)
 *                             (absent: consent is given)
 * referrals.consent(false) deletes the cookie. Without consent, referral() still
 * answers the referral of the current page's URL, from memory only.
 */
(function (w, d) {
  var s = d.currentScript || d.querySelector('script[src*="snippet.js"]');
  var attr = function (n) { return s ? s.getAttribute('data-' + n) : null; };
  var days = +attr('window-days');
  if (!(days >= 1 && days <= 365)) days = 30;
  var last = attr('attribution') == 'last';
  var consented = attr('consent') != 'pending';
  var OK = /^[\w-]{1,64}$/;
  var q = new URLSearchParams(w.location.search);

  // A referral, or null: codes and click ids are [A-Za-z0-9_-] (the server checks them
  // again; a forged one attributes nothing).
  function pair(code, click) {
    return code && OK.test(code) ? { code: code, click_id: click && OK.test(click) ? click : null } : null;
  }
  var seen = pair(q.get('ref'), q.get('click_id'));

  function read() {
    var m = d.cookie.match(/(?:^|; )referrals_ref=([\w-]+)\.([\w-]*)/);
    return m && pair(m[1], m[2]);
  }
  function write(v, age) {
    d.cookie = 'referrals_ref=' + (v ? v.code + '.' + (v.click_id || '') : '') + ';Max-Age=' + age +
      ';Path=/;SameSite=Lax' + (w.location.protocol == 'https:' ? ';Secure' : '');
  }
  // First click: a kept referral is not replaced until its cookie expires.
  function keep() {
    if (seen && (last || !read())) write(seen, days * 86400);
  }
  if (consented) keep();
  w.referrals = {
    consent: function (given) {
      consented = !!given;
      consented ? keep() : write(null, 0);
    },
    referral: function () {
      var kept = consented ? read() : null;
      return (last ? seen || kept : kept || seen) || null;
    }
  };
})(window, document);
