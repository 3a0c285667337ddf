/* Loaded by /redoc just before ReDoc 2.x itself.

   ReDoc 2.x draws a "API docs by Redocly" link at the foot of its side menu whose logo is an
   <img> hard-coded to https://cdn.redoc.ly/redoc/logo-mini.svg, with no option to leave it
   out. On a host without outside access that is a request that can only fail (and one to a
   third party on any host). This swaps that one URL for an empty inline image before React
   sets it, so the page asks nothing of the outside; the vendored bundle stays byte-identical
   to the upstream package. */
(function () {
  "use strict";
  var REMOTE_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  var EMPTY = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E";
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (value === REMOTE_LOGO && this instanceof HTMLImageElement && name === "src") {
      value = EMPTY;
    }
    return setAttribute.call(this, name, value);
  };
  var descriptor = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  if (descriptor && descriptor.set) {
    Object.defineProperty(HTMLImageElement.prototype, "src", {
      configurable: true,
      enumerable: descriptor.enumerable,
      get: descriptor.get,
      set: function (value) {
        descriptor.set.call(this, value === REMOTE_LOGO ? EMPTY : value);
      }
    });
  }
})();
