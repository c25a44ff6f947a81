import AsyncHTTPClient
import OpenAPIRuntime
public enum _P2 {}
