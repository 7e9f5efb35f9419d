(function () {
  var script = document.currentScript;
  var domain = script.getAttribute('data-domain');
  var api = script.getAttribute('data-api') || new URL(script.src).origin + '/api/event';
  function send(name, options) {
    options = options || {};
    var payload = { n: name, u: location.href, d: domain, r: document.referrer || null, w: window.innerWidth };
    if (options.props) payload.p = options.props;
    if (options.revenue != null) payload.revenue = { amount: options.revenue, currency: options.currency };
    try {
      fetch(api, { method: 'POST', body: JSON.stringify(payload), headers: { 'Content-Type': 'text/plain' }, keepalive: true })
        .then(function () { if (options.callback) options.callback(); })
        .catch(function () {});
    } catch (e) {}
  }
  var queued = (window.mallard && window.mallard.q) || [];
  window.mallard = send;
  for (var i = 0; i < queued.length; i++) send.apply(null, queued[i]);
  send('pageview');
})();
