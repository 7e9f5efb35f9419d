// Mallard Metrics tracker. Readable source: `cargo xtask tracker` minifies it into
// dist/mallard.min.js, which the server serves at /mallard.js and /js/script.js.
// Options (attributes of the <script> tag): data-domain (site id), data-api (endpoint),
// data-hash (count #/route changes), data-include-localhost, data-respect-dnt,
// data-outbound-links, data-file-downloads, data-tagged-events.
(function (win, doc) {
  var script = doc.currentScript;
  var loc = win.location;
  var nav = win.navigator;
  function attr(name) {
    return script.getAttribute('data-' + name);
  }
  function has(name) {
    return attr(name) != null;
  }
  var domain = attr('domain');
  var endpoint = attr('api') || new URL('/api/event', script.src).href;
  var hashMode = has('hash');
  var lastPage;

  function send(name, options) {
    options = options || {};
    var done = options.callback || function () {};
    try {
      if (
        win.localStorage.mallard_ignore == 'true' ||
        (!has('include-localhost') && /^(localhost|127\.|\[::1\]|$)/.test(loc.hostname)) ||
        nav.webdriver ||
        (has('respect-dnt') && (nav.doNotTrack || win.doNotTrack) == 1)
      ) {
        return done();
      }
      var body = JSON.stringify({
        n: name,
        u: loc.href,
        d: domain,
        r: doc.referrer,
        w: win.innerWidth,
        h: hashMode,
        p: options.props,
        ra: options.revenue,
        rc: options.currency,
      });
      // A string body is sent as text/plain: a "simple" request, no CORS preflight. keepalive
      // lets it outlive the page.
      fetch(endpoint, { method: 'POST', body: body, keepalive: true }).then(done, done);
    } catch (e) {
      try {
        nav.sendBeacon(endpoint, body);
      } catch (e) {}
      done();
    }
  }

  function pageview() {
    var page = loc.pathname + (hashMode ? loc.hash : '');
    if (page != lastPage) send('pageview');
    lastPage = page;
  }

  // Page loads, and single-page-app navigations through the History API (and #/routes).
  function start() {
    pageview();
    var history = win.history;
    ['pushState', 'replaceState'].map(function (method) {
      var original = history[method];
      history[method] = function () {
        original.apply(this, arguments);
        pageview();
      };
    });
    win.addEventListener('popstate', pageview);
    win.addEventListener('hashchange', pageview);
  }

  // Opt-in automatic events from clicks: tagged elements, file downloads, outbound links.
  doc.addEventListener(
    'click',
    function (event) {
      // Never throw into the host page (SVG links, odd markup).
      try {
        for (var node = event.target; node && !node.href && !/mallard-event-name=/.test(node.className); ) node = node.parentNode;
        if (!node) return;
        var props = {};
        var name;
        if (has('tagged-events'))
          node.className.replace(/mallard-event-(\w+)=(\S+)/g, function (_, key, value) {
            value = value.replace(/\+/g, ' ');
            key == 'name' ? (name = value) : (props[key] = value);
          });
        if (name) return send(name, { props: props });
        var url = node.href && new URL(node.href);
        if (!url) return;
        props.url = url.href;
        if (has('file-downloads') && /\.(pdf|docx?|xlsx?|pptx?|csv|txt|zip|gz|7z|rar|dmg|exe|msi|apk|mp[34])$/i.test(url.pathname))
          send('File Download', { props: props });
        else if (has('outbound-links') && url.host != loc.host && /^http/.test(url.protocol))
          send('Outbound Link: Click', { props: props });
      } catch (e) {}
    },
    true
  );

  // window.mallard(name, options): custom events; calls queued before the script loaded replay.
  var queued = (win.mallard || {}).q || [];
  win.mallard = function (name, options) {
    send(name, name == '404' ? { props: { path: loc.pathname } } : options);
  };
  queued.map(function (args) {
    win.mallard.apply(0, args);
  });

  // A prerendered page counts once it is shown.
  // (prerenderingchange fires once, when the page is activated.)
  doc.prerendering ? doc.addEventListener('prerenderingchange', start) : start();
})(window, document);
