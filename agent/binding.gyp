{
  "targets": [
    {
      "target_name": "crypt",
      "sources": ["native/crypt.c"],
      "libraries": ["-lcrypt"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
