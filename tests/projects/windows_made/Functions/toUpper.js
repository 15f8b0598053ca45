function main(s) {
    return s.toUpperCase();
}
