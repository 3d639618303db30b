//! Which redirects are followed, and how: node-fetch 2's rules (reqwest's too).

use super::Method;

/// The method for following a redirect with `status`: 303, and 301/302 for a POST,
/// become a GET without body; `None` when `status` is not a redirect that is followed.
pub fn next_method(status: u16, method: Method) -> Option<Method> {
  match status {
    303 => Some(Method::Get),
    301 | 302 if method == Method::Post => Some(Method::Get),
    301 | 302 | 307 | 308 => Some(method),
    _ => None,
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use Method::*;

  #[test]
  fn redirect_methods() {
    assert_eq!(next_method(303, Post), Some(Get));
    assert_eq!(next_method(302, Post), Some(Get));
    assert_eq!(next_method(302, Get), Some(Get));
    assert_eq!(next_method(307, Post), Some(Post));
    assert_eq!(next_method(308, Get), Some(Get));
    assert_eq!(next_method(200, Get), None);
    assert_eq!(next_method(304, Get), None);
  }
}
