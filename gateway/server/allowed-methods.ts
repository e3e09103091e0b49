/** The methods the gateway forwards at all (TRACE and CONNECT are answered 405 with this list). */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
