"use strict"
// The generated napi-rs loader: picks the .node for this platform.
module.exports = require("../binding.js")
