// Types for the web build (`pusher-native/web`, and `pusher-native` under the workerd,
// edge-light and worker conditions): the same API as the native build. Its requests
// resolve with the platform's fetch `Response` (no `buffer()`, no `headers.raw()`: see
// the README's "Web build" section).
export * from "../index.mjs"
export { default } from "../index.mjs"
