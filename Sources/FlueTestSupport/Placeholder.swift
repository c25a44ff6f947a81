import Hummingbird
public enum _P3 {}
